# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is a node's generated TLS material current? Read on the controller, without
a module run.

The instance role makes a CA per cluster and a certificate per node with
community.crypto: seven module runs on the controller, about ten seconds, every
converge. When everything is already as those modules would leave it, nothing
needs them: ``tls_status`` says so from the PEM texts alone, and the role skips
them. It checks what the role's requests fix: the CA's key pairs with its
certificate, which has not expired; the node's key pairs with its certificate,
which the CA signed, names the node (common name and exactly the wanted
subject alternative names) and stays valid past the renewal window.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import ipaddress

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - cryptography comes with ansible-core's controller
    HAS_CRYPTOGRAPHY = False


def _public(key):
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _not_after(cert):
    value = getattr(cert, 'not_valid_after_utc', None)
    if value is None:
        value = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return value


def normalize_name(name):
    """'IP:10.0.0.1' / 'DNS:pdb1' in one spelling (IP addresses compressed)."""
    kind, sep, value = str(name).partition(':')
    kind = kind.strip().upper()
    if kind == 'IP' and sep:
        try:
            return 'IP:%s' % ipaddress.ip_address(value.strip())
        except ValueError:
            pass
    return '%s:%s' % (kind, value.strip())


def _alt_names(cert):
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = set('DNS:%s' % n for n in ext.get_values_for_type(x509.DNSName))
    names.update('IP:%s' % n for n in ext.get_values_for_type(x509.IPAddress))
    return names


def tls_status(ca_cert, ca_key, cert, key, common_name, alt_names, renew_days, now=None):
    """{current: bool, why: str or None} from the PEM texts (None or '' = missing)."""
    if not HAS_CRYPTOGRAPHY:
        return {'current': False, 'why': 'the Python cryptography library is missing on the controller'}
    for label, text in (('the CA certificate', ca_cert), ('the CA key', ca_key),
                        ('the node certificate', cert), ('the node key', key)):
        if not text:
            return {'current': False, 'why': '%s is missing' % label}
    now = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        ca = x509.load_pem_x509_certificate(ca_cert.encode('utf-8'))
        ca_private = serialization.load_pem_private_key(ca_key.encode('utf-8'), None)
        node = x509.load_pem_x509_certificate(cert.encode('utf-8'))
        node_private = serialization.load_pem_private_key(key.encode('utf-8'), None)
    except (ValueError, TypeError) as e:
        return {'current': False, 'why': 'unreadable: %s' % e}
    if _public(ca.public_key()) != _public(ca_private.public_key()):
        return {'current': False, 'why': 'the CA certificate is not of the CA key'}
    if _not_after(ca) <= now:
        return {'current': False, 'why': 'the CA certificate expired'}
    if _public(node.public_key()) != _public(node_private.public_key()):
        return {'current': False, 'why': 'the node certificate is not of the node key'}
    if node.issuer != ca.subject:
        return {'current': False, 'why': 'the node certificate was not issued by the CA'}
    try:
        if not isinstance(ca.public_key(), ec.EllipticCurvePublicKey):
            return {'current': False, 'why': 'the CA key is not an EC key'}
        ca.public_key().verify(node.signature, node.tbs_certificate_bytes, ec.ECDSA(node.signature_hash_algorithm))
    except InvalidSignature:
        return {'current': False, 'why': 'the node certificate is not signed by the CA key'}
    cn = [a.value for a in node.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if cn != [common_name]:
        return {'current': False, 'why': 'the node certificate names %s, not %s' % (cn, common_name)}
    wanted = set(normalize_name(n) for n in alt_names)
    have = _alt_names(node)
    if have != wanted:
        return {'current': False, 'why': 'the node certificate is for %s, not %s' % (
            ', '.join(sorted(have)), ', '.join(sorted(wanted)))}
    if _not_after(node) <= now + datetime.timedelta(days=int(renew_days)):
        return {'current': False, 'why': 'the node certificate expires within %d days' % int(renew_days)}
    return {'current': True, 'why': None}
