# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Engine parameters: the engine's own catalog, value parsing with units,
range and enum checks, and whether a change needs a reload or a restart.

A catalog maps a parameter name (lower case: names are case-insensitive) to an ``Entry`` (vartype, context, unit,
min, max, enum values), as ``pg_settings`` describes it. It comes from one of
three places, best first:

- a running engine's ``pg_settings`` (``CATALOG_SQL``; also gives the
  current value of every parameter, so a change can be classified);
- the installed engine binary, ``postgres --describe-config`` (names,
  context, type, min, max; it prints no units and no enum values, which the
  shipped catalog of the same major version supplies);
- the catalog shipped with the collection for the major version
  (``pg_catalog_<major>.py``, generated from an engine by
  ``make param-catalog``).

Values are parsed as PostgreSQL's ``guc.c`` parses them: booleans by unique
prefix, integers (decimal, hex, octal, fractions rounded) and reals with
an optional unit (memory ``B kB MB GB TB``, time ``us ms s min h d``; case
matters), converted to the parameter's base unit and checked against its
range; enums case-insensitively (with the hidden on/off aliases).

Pure functions; the module ``parameter_check`` does the reading.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import re

from ansible_collections.polardb.stack.plugins.module_utils import pg_catalog_15

SHIPPED = {'15': pg_catalog_15}

VARTYPES = ('bool', 'integer', 'real', 'string', 'enum')
# pg_settings.context -> what a change in postgresql.conf needs.
RESTART_CONTEXTS = ('postmaster',)
FIXED_CONTEXTS = ('internal',)
# fixed parameters that a setting of the collection gives when the cluster is created
SET_AT_CREATION_BY = {'wal_segment_size': 'polardb_wal_segment_size_mb'}

# One row, one column ``catalog``: the JSON of every parameter of the engine.
CATALOG_SQL = """SELECT json_build_object(
 'version', current_setting('server_version'),
 'data_directory', current_setting('data_directory'),
 'settings', json_agg(json_build_object(
   'name', name, 'vartype', vartype, 'context', context, 'unit', unit,
   'min_val', min_val, 'max_val', max_val, 'enumvals', enumvals,
   'setting', setting, 'pending_restart', pending_restart, 'source', source) ORDER BY name)
)::text AS catalog FROM pg_settings"""

# guc.c's conversion tables: unit -> multiplier, per base unit.
_MEMORY_UNITS = {'B': 1, 'kB': 1024, 'MB': 1024 ** 2, 'GB': 1024 ** 3, 'TB': 1024 ** 4}
_TIME_UNITS = {'us': 0.001, 'ms': 1, 's': 1000, 'min': 60000, 'h': 3600000, 'd': 86400000}
_MEMORY_ORDER = ('TB', 'GB', 'MB', 'kB', 'B')
_TIME_ORDER = ('d', 'h', 'min', 's', 'ms', 'us')
_BASE_UNIT_RE = re.compile(r'^(\d*)\s*([A-Za-z]+)$')
_NUMBER_UNIT_RE = re.compile(r'^\s*([-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))\s*([A-Za-z]*)\s*$')
_INT_MIN, _INT_MAX = -2147483648, 2147483647
_BOOL_WORDS = (('true', True), ('false', False), ('yes', True), ('no', False))


class Entry(object):
    """One parameter of a catalog."""

    __slots__ = ('name', 'vartype', 'context', 'unit', 'min_val', 'max_val', 'enumvals',
                 'setting', 'pending_restart', 'source')

    def __init__(self, name, vartype, context, unit=None, min_val=None, max_val=None,
                 enumvals=None, setting=None, pending_restart=False, source=None):
        if vartype not in VARTYPES:
            raise ValueError('%s: unknown vartype %r' % (name, vartype))
        self.name = name
        self.vartype = vartype
        self.context = context
        self.unit = unit or None
        self.min_val = _number_or_none(min_val)
        self.max_val = _number_or_none(max_val)
        self.enumvals = list(enumvals) if enumvals else None
        self.setting = setting
        self.pending_restart = bool(pending_restart)
        self.source = source

    def as_dict(self):
        return dict((k, getattr(self, k)) for k in self.__slots__)


def _number_or_none(value):
    if value in (None, ''):
        return None
    number = float(value)
    return int(number) if number.is_integer() and abs(number) < 2 ** 63 else number


# ------------------------------------------------------------- catalogs

def catalog_from_settings(rows):
    """pg_settings rows (dicts) -> {name: Entry}."""
    return dict((r['name'].lower(),
                 Entry(r['name'], r['vartype'], r['context'], r.get('unit'), r.get('min_val'), r.get('max_val'),
                       r.get('enumvals'), r.get('setting'), r.get('pending_restart'), r.get('source')))
                for r in rows)


def parse_catalog_query(text):
    """The ``catalog`` column of ``CATALOG_SQL`` -> (catalog, version, data_directory)."""
    doc = text if isinstance(text, dict) else json.loads(text)
    return catalog_from_settings(doc.get('settings') or []), doc.get('version'), doc.get('data_directory')


_DESCRIBE_TYPES = {'BOOLEAN': 'bool', 'INTEGER': 'integer', 'REAL': 'real', 'STRING': 'string',
                   'ENUM': 'enum'}


def catalog_from_describe_config(text):
    """``postgres --describe-config`` output -> {name: Entry}.

    One line per parameter, tab-separated: name, context, group, type,
    default, min, max, short and long description. Units and enum values are
    not printed: ``merge_catalogs`` takes them from another catalog.
    """
    catalog = {}
    for line in (text or '').splitlines():
        fields = line.split('\t')
        if len(fields) < 7 or fields[3] not in _DESCRIBE_TYPES:
            continue
        vartype = _DESCRIBE_TYPES[fields[3]]
        numeric = vartype in ('integer', 'real')
        catalog[fields[0].lower()] = Entry(fields[0], vartype, fields[1],
                                           min_val=fields[5] if numeric else None,
                                           max_val=fields[6] if numeric else None)
    return catalog


def catalog_from_shipped(module):
    """A shipped ``pg_catalog_<major>`` module -> {name: Entry}."""
    return dict((name.lower(), Entry(name, *fields)) for name, fields in module.CATALOG.items())


def merge_catalogs(primary, supplement):
    """``primary`` (the binary's) wins; ``supplement`` (shipped) gives units,
    enum values and the parameters ``--describe-config`` leaves out (developer
    options not in the sample file)."""
    merged = dict(supplement)
    for name, entry in primary.items():
        extra = supplement.get(name)
        if extra is not None and extra.vartype == entry.vartype:
            entry = Entry(name, entry.vartype, entry.context, extra.unit, entry.min_val, entry.max_val,
                          extra.enumvals)
        merged[name] = entry
    return merged


# ---------------------------------------------------------------- values

def as_text(value):
    """A value from YAML/Jinja as postgresql.conf gets it (booleans on/off)."""
    if isinstance(value, bool):
        return 'on' if value else 'off'
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_bool(text):
    """PostgreSQL's parse_bool: unique prefixes of true/false/yes/no, on/off, 1/0."""
    t = text.strip().lower()
    if not t:
        return None
    for word, result in _BOOL_WORDS:
        if word.startswith(t):
            return result
    if t in ('on', 'off', 'of'):
        return t == 'on'
    if t in ('1', '0'):
        return t == '1'
    return None


def _base_unit(unit):
    """'8kB' -> (8, 'kB', 'memory'); 'ms' -> (1, 'ms', 'time'); None -> None."""
    if not unit:
        return None
    m = _BASE_UNIT_RE.match(unit.strip())
    if not m:
        return None
    factor = int(m.group(1) or 1)
    name = m.group(2)
    if name in _MEMORY_UNITS:
        return factor, name, 'memory'
    if name in _TIME_UNITS:
        return factor, name, 'time'
    return None


def valid_units_text(unit):
    base = _base_unit(unit)
    if base is None:
        return ''
    names = _MEMORY_ORDER[::-1] if base[2] == 'memory' else _TIME_ORDER[::-1]
    return ', '.join('"%s"' % n for n in names)


def _convert(number, unit_text, unit):
    """``number`` in ``unit_text`` -> the parameter's base unit, rounded as
    guc.c does (a fraction is rounded to the next smaller unit). None when
    the unit does not fit the parameter."""
    base = _base_unit(unit)
    if base is None:
        return None
    factor, base_name, kind = base
    table = _MEMORY_UNITS if kind == 'memory' else _TIME_UNITS
    order = _MEMORY_ORDER if kind == 'memory' else _TIME_ORDER
    if unit_text not in table:
        return None
    per_base = table[base_name] * factor
    value = number * table[unit_text] / per_base
    smaller = order[order.index(unit_text) + 1:] if unit_text in order else ()
    if smaller:
        step = table[smaller[0]] / per_base
        value = round(value / step) * step
    return value


def _range_text(entry):
    unit = (' %s' % entry.unit) if entry.unit else ''
    return '%s .. %s%s' % (_fmt(entry.min_val), _fmt(entry.max_val), unit)


def _fmt(number):
    if number is None:
        return '?'
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return str(number)


def parse_value(entry, value):
    """Check ``value`` for parameter ``entry``.

    Returns (normalised, error): ``normalised`` in the parameter's base unit
    as pg_settings.setting shows it (integers and reals as numbers, booleans
    'on'/'off', enums lower case); ``error`` a sentence naming the parameter
    and the allowed values, or None.
    """
    text = as_text(value)
    name = entry.name
    if '\n' in text or '\r' in text or '\0' in text:
        return None, '%s: a value may not hold a line break or NUL' % name
    if entry.context in FIXED_CONTEXTS:
        return None, '%s cannot be set: it is fixed when the engine is built or initialised%s' % (
            name, ' (set %s before the cluster is created)' % SET_AT_CREATION_BY[name]
            if name in SET_AT_CREATION_BY else '')
    if entry.vartype == 'bool':
        b = parse_bool(text)
        if b is None:
            return None, ('%s=%r: not a boolean (allowed: on, off, true, false, yes, no, 1, 0)'
                          % (name, text))
        return ('on' if b else 'off'), None
    if entry.vartype == 'enum':
        allowed = list(entry.enumvals or [])
        lowered = dict((v.lower(), v) for v in allowed)
        t = text.strip().lower()
        if t in lowered:
            return lowered[t], None
        # guc.c's hidden aliases of enums that have on/off
        if 'on' in lowered and t in ('true', 'yes', '1'):
            return 'on', None
        if 'off' in lowered and t in ('false', 'no', '0'):
            return 'off', None
        if not allowed:
            return t, None  # enum values unknown (catalog without them): the engine decides
        return None, '%s=%r: allowed values are %s' % (name, text, ', '.join(allowed))
    if entry.vartype == 'string':
        return text, None
    return _parse_number(entry, text)


def _parse_number(entry, text):
    name = entry.name
    m = _NUMBER_UNIT_RE.match(text)
    units = valid_units_text(entry.unit)
    if not m:
        return None, ('%s=%r: not %s%s' % (
            name, text, 'an integer' if entry.vartype == 'integer' else 'a number',
            (' (optionally with a unit: %s)' % units) if units else ''))
    digits, unit_text = m.group(1), m.group(2)
    try:
        if digits.lower().lstrip('+-').startswith('0x'):
            number = float(int(digits, 16))
        elif entry.vartype == 'integer' and re.match(r'^[-+]?0[0-7]+$', digits):
            number = float(int(digits, 8))  # strtol base 0: a leading 0 is octal
        else:
            number = float(digits)
    except ValueError:
        return None, '%s=%r: not a number' % (name, text)
    if math.isinf(number) or math.isnan(number):
        return None, '%s=%r: not a finite number' % (name, text)
    if unit_text:
        if not entry.unit:
            return None, '%s=%r: this parameter takes no unit' % (name, text)
        converted = _convert(number, unit_text, entry.unit)
        if converted is None:
            if _base_unit(entry.unit) is None:
                # a unit this code does not know: the engine decides
                return text, None
            return None, ('%s=%r: invalid unit %r; valid units for this parameter are %s'
                          % (name, text, unit_text, units))
        number = converted
    if entry.vartype == 'integer':
        number = float(round(number))
        if number < _INT_MIN or number > _INT_MAX:
            return None, '%s=%r: exceeds the integer range' % (name, text)
        number = int(number)
    if ((entry.min_val is not None and number < entry.min_val)
            or (entry.max_val is not None and number > entry.max_val)):
        shown = _fmt(number) + ((' ' + entry.unit) if entry.unit and unit_text else '')
        return None, ('%s=%r (%s) is outside the valid range %s'
                      % (name, text, shown, _range_text(entry)))
    return number, None


# ----------------------------------------------------------- checking

def apply_of(entry):
    """What a change of ``entry`` in postgresql.conf needs: 'restart' or 'reload'."""
    return 'restart' if entry.context in RESTART_CONTEXTS else 'reload'


def _same(entry, normalised):
    """Whether ``normalised`` equals the engine's current setting."""
    current = entry.setting
    if current is None:
        return False
    if entry.vartype in ('integer', 'real'):
        try:
            return float(current) == float(normalised)
        except (TypeError, ValueError):
            return False
    if entry.vartype in ('bool', 'enum'):
        return str(current).lower() == str(normalised).lower()
    return str(current) == str(normalised)


def check_parameters(parameters, catalog, reserved=(), reserved_prefixes=(), managed=()):
    """Check every parameter against ``catalog``.

    Returns {problems, warnings, parameters, restart_required, resets,
    pending_restart}: ``parameters`` maps each known name to {value,
    normalised, setting, vartype, unit, context, apply, change}; ``change``
    is 'none', 'reload' or 'restart' when the catalog carries the engine's
    current settings, else null; ``setting`` is the engine's current value.
    With a running engine's catalog, ``resets`` maps each parameter that the
    engine took from a configuration file but that is neither in
    ``parameters`` nor in ``reserved``/``managed`` (the names the collection
    writes itself) to what its return to the default needs ('reload' or
    'restart'); ``pending_restart`` lists what the engine says waits for a
    restart.
    """
    problems, warnings, out = [], [], {}
    reserved = set(str(r).lower() for r in reserved or ())
    prefixes = tuple(str(p).lower() for p in reserved_prefixes or ())
    for name in sorted(parameters or {}, key=str):
        value = parameters[name]
        lname = str(name).strip().lower()
        if lname in reserved or (prefixes and lname.startswith(prefixes)):
            problems.append('parameter %s is managed by polardb.stack and cannot be set in polardb_parameters'
                            % lname)
            continue
        if value is None:
            problems.append('%s: no value (null); remove it to keep the default' % lname)
            continue
        entry = catalog.get(lname)
        if entry is None:
            if '.' in lname and re.match(r'^[a-z_][a-z0-9_$]*\.[a-z_][a-z0-9_$.]*$', lname):
                # an extension's parameter: the engine keeps it as a placeholder until the extension loads
                warnings.append('%s is not known to the engine (an extension parameter?); not checked' % lname)
                out[lname] = {'value': as_text(value), 'normalised': as_text(value), 'setting': None,
                              'vartype': None, 'unit': None, 'context': None, 'apply': None, 'change': None}
                continue
            problems.append('%s is not a parameter of this engine%s' % (lname, _suggest(lname, catalog)))
            continue
        normalised, error = parse_value(entry, value)
        if error:
            problems.append(error)
            continue
        change = None
        if entry.setting is not None:
            change = 'none' if _same(entry, normalised) else apply_of(entry)
        out[lname] = {'value': as_text(value), 'normalised': normalised, 'setting': entry.setting,
                      'vartype': entry.vartype, 'unit': entry.unit, 'context': entry.context,
                      'apply': apply_of(entry), 'change': change}
    kept = reserved | set(str(m).lower() for m in managed or ()) | set(out)
    resets = dict((lname, apply_of(entry)) for lname, entry in catalog.items()
                  if entry.source == 'configuration file' and lname not in kept
                  and not (prefixes and lname.startswith(prefixes)))
    # the collection's own settings (a promoted node's recovery_target_timeline) are not the user's to restart for
    pending = sorted(lname for lname, entry in catalog.items()
                     if entry.pending_restart and (lname in out or lname not in kept))
    return {
        'problems': problems,
        'warnings': warnings,
        'parameters': out,
        'resets': resets,
        'pending_restart': pending,
        'restart_required': bool(pending) or any(p['change'] == 'restart' for p in out.values())
        or 'restart' in resets.values(),
    }


def _suggest(name, catalog):
    """' (did you mean x?)' for a near miss, else ''."""
    import difflib
    close = difflib.get_close_matches(name, list(catalog), n=1, cutoff=0.8)
    return ' (did you mean %s?)' % close[0] if close else ''


def size_to_megabytes(size_bytes, fraction):
    """The ``max_slot_wal_keep_size`` derived from a LUN of ``size_bytes``:
    ``fraction`` of it, in whole MB (at least 1)."""
    return max(1, int(int(size_bytes) * float(fraction)) // (1024 * 1024))


# ------------------------------------------------------------- reading

CATALOG_SOURCES = ('auto', 'engine', 'binary', 'shipped')


def load_catalog(instance, engine_major, source='auto'):
    """The catalog for the local node: (catalog, info).

    ``instance``: an ``instance.Instance`` (its runner runs the commands).
    ``source``: 'engine' (the running engine of this data directory),
    'binary' (``postgres --describe-config`` of ``instance.bin_dir``),
    'shipped', or 'auto' (the first of those that is available).
    ``info``: {source, version, notes} - ``notes`` say why a better source
    was not used.
    """
    import os
    from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

    if source not in CATALOG_SOURCES:
        raise PolarDBError('catalog must be one of %s, not %r' % (', '.join(CATALOG_SOURCES), source))
    notes = []
    shipped = SHIPPED.get(str(engine_major))
    if source in ('auto', 'engine'):
        if instance.dir_state()['initialized']:
            try:
                text = instance.execute(CATALOG_SQL).strip()
                catalog, version, served = parse_catalog_query(text)
                if os.path.realpath(served or '') == os.path.realpath(instance.data_dir):
                    return catalog, {'source': 'engine', 'version': version, 'notes': notes}
                notes.append('the engine on port %d serves %s, not %s' % (instance.port, served, instance.data_dir))
            except (PolarDBError, ValueError) as e:
                notes.append('no running engine: %s' % (getattr(e, 'msg', None) or e))
        else:
            notes.append('no data directory at %s yet' % instance.data_dir)
        if source == 'engine':
            raise PolarDBError('no running engine to read pg_settings from: %s' % '; '.join(notes))
    postgres = os.path.join(instance.bin_dir, 'postgres')
    if source in ('auto', 'binary'):
        if os.path.exists(postgres):
            res = instance.runner.run([postgres, '--describe-config'], environ={'LC_ALL': 'C'}, cwd='/')
            version = instance.runner.run([postgres, '--version'], environ={'LC_ALL': 'C'}, cwd='/').stdout.strip()
            catalog = catalog_from_describe_config(res.stdout)
            if not catalog:
                raise PolarDBError('%s --describe-config printed no parameter' % postgres)
            if shipped is not None:
                catalog = merge_catalogs(catalog, catalog_from_shipped(shipped))
            else:
                notes.append('no shipped catalog for %s: units and enum values are not checked' % engine_major)
            return catalog, {'source': 'binary', 'version': version, 'notes': notes}
        notes.append('%s is not installed' % postgres)
        if source == 'binary':
            raise PolarDBError('no engine binary: %s' % '; '.join(notes))
    if shipped is None:
        raise PolarDBError('no parameter catalog for engine %s: %s, and the collection ships catalogs for %s only'
                           % (engine_major, '; '.join(notes), ', '.join(sorted(SHIPPED))))
    return catalog_from_shipped(shipped), {'source': 'shipped', 'version': shipped.VERSION, 'notes': notes}
