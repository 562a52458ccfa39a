# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import ipaddress

import pytest

cryptography = pytest.importorskip('cryptography')

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from ansible_collections.polardb.stack.plugins.plugin_utils.tls_check import normalize_name, tls_status  # noqa: E402

NOW = datetime.datetime(2026, 12, 2, tzinfo=datetime.timezone.utc)


def pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def make_cert(subject_cn, key, issuer_cn, issuer_key, days, names=()):
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - datetime.timedelta(days=1))
               .not_valid_after(NOW + datetime.timedelta(days=days)))
    if names:
        alt = [x509.IPAddress(ipaddress.ip_address(n[3:])) if n.startswith('IP:') else x509.DNSName(n[4:])
               for n in names]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope='module')
def material():
    ca_key = ec.generate_private_key(ec.SECP256R1())
    node_key = ec.generate_private_key(ec.SECP256R1())
    ca = make_cert('demo CA', ca_key, 'demo CA', ca_key, 3650)
    node = make_cert('pdb1', node_key, 'demo CA', ca_key, 365, ['IP:10.0.0.1', 'DNS:pdb1'])
    return dict(ca_cert=ca, ca_key=pem_key(ca_key), cert=node, key=pem_key(node_key),
                ca_key_obj=ca_key, node_key_obj=node_key)


def status(m, **kw):
    args = dict(ca_cert=m['ca_cert'], ca_key=m['ca_key'], cert=m['cert'], key=m['key'], common_name='pdb1',
                alt_names=['DNS:pdb1', 'IP:10.0.0.1'], renew_days=30, now=NOW)
    args.update(kw)
    return tls_status(**args)


def test_current_material_is_current(material):
    assert status(material) == {'current': True, 'why': None}


def test_what_is_not_current_says_why(material):
    other = ec.generate_private_key(ec.SECP256R1())
    cases = [
        (dict(cert=''), 'the node certificate is missing'),
        (dict(key=pem_key(other)), 'not of the node key'),
        (dict(ca_key=pem_key(other)), 'the CA certificate is not of the CA key'),
        (dict(alt_names=['DNS:pdb1', 'IP:10.0.0.2']), 'is for DNS:pdb1, IP:10.0.0.1'),
        (dict(common_name='pdb2'), "names ['pdb1'], not pdb2"),
        (dict(renew_days=400), 'expires within 400 days'),
        (dict(cert='not a pem'), 'unreadable'),
    ]
    for kw, why in cases:
        result = status(material, **kw)
        assert result['current'] is False and why in result['why'], (kw, result)
    # signed by another CA of the same name
    forged = make_cert('pdb1', material['node_key_obj'], 'demo CA', other, 365, ['IP:10.0.0.1', 'DNS:pdb1'])
    assert 'not signed by the CA key' in status(material, cert=forged)['why']
    expired_ca = make_cert('demo CA', material['ca_key_obj'], 'demo CA', material['ca_key_obj'], -1)
    assert status(material, ca_cert=expired_ca)['why'] == 'the CA certificate expired'


def test_names_compare_in_one_spelling():
    assert normalize_name('ip:fd00:0::1') == 'IP:fd00::1'
    assert normalize_name('DNS: pdb1') == 'DNS:pdb1'
