#!/usr/bin/env python3
"""Writes responses/*.http and responses/requests.txt (which request each
answers): PCCS/PCS API v4 responses as they travel on the
wire (status line, headers, blank line, body; CRLF line ends), built from the
real collateral in vectors/ and from the wire facts recorded in the project's
PROTOCOL.md ("Collateral services"). Deliberately not Go and not the code
under test: the Go tests read these files as literal input.

Run from this folder: python3 make_responses.py
"""

import base64
import json
import os
import urllib.parse


def pct(pem):
    # Issuer chains travel as percent-encoded PEM. Every byte outside
    # A-Z a-z 0-9 - _ . ~ is escaped (space %20, newline %0A, + / = too),
    # as encodeURIComponent does for the PEM alphabet.
    return urllib.parse.quote(pem, safe="")


def pem_crl(der):
    b64 = base64.b64encode(der).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return ("-----BEGIN X509 CRL-----\n" + "\n".join(lines) + "\n-----END X509 CRL-----\n").encode()


INDEX = []


def write(name, headers, body, request=None):
    if request:
        INDEX.append(request + " " + name)
    head = ["HTTP/1.1 200 OK"]
    for k, v in headers:
        head.append(k + ": " + v)
    head.append("Content-Length: " + str(len(body)))
    data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    with open(os.path.join("responses", name), "wb") as f:
        f.write(data)


def signed(key, body, sig):
    return ('{"' + key + '":' + body + ',"signature":"' + sig + '"}').encode()


def main():
    os.makedirs("responses", exist_ok=True)
    sets = {
        "sgx": json.load(open("vectors/sgx_quote_collateral.json")),
        "tdx": json.load(open("vectors/tdx_quote_collateral.json")),
    }
    for tee, c in sets.items():
        tcb = signed("tcbInfo", c["tcb_info"], c["tcb_info_signature"])
        qe = signed("enclaveIdentity", c["qe_identity"], c["qe_identity_signature"])
        json_type = ("Content-Type", "application/json")
        fmspc = json.loads(c["tcb_info"])["fmspc"]
        base = "/" + tee + "/certification/v4/"
        write(tee + "-tcb.http", [json_type, ("TCB-Info-Issuer-Chain", pct(c["tcb_info_issuer_chain"]))], tcb,
              "GET " + base + "tcb?fmspc=" + fmspc)
        write(tee + "-qe-identity.http", [json_type, ("SGX-Enclave-Identity-Issuer-Chain", pct(c["qe_identity_issuer_chain"]))], qe,
              "GET " + base + "qe/identity")
        ca = "processor" if tee == "sgx" else "platform"
        der = bytes.fromhex(c["pck_crl"])
        chain = ("SGX-PCK-CRL-Issuer-Chain", pct(c["pck_crl_issuer_chain"]))
        write("pckcrl-" + ca + "-pem.http", [("Content-Type", "application/x-pem-file"), chain], pem_crl(der),
              "GET /sgx/certification/v4/pckcrl?ca=" + ca)
        write("pckcrl-" + ca + "-der.http", [("Content-Type", "application/pkix-crl"), chain], der,
              "GET /sgx/certification/v4/pckcrl?ca=" + ca + "&encoding=der")
    c = sets["sgx"]
    # API v3 name of the TCB info chain header.
    write("sgx-tcb-v3-header.http",
          [("Content-Type", "application/json"), ("SGX-TCB-Info-Issuer-Chain", pct(c["tcb_info_issuer_chain"]))],
          signed("tcbInfo", c["tcb_info"], c["tcb_info_signature"]))
    # The header name Blindfold expected before: not one Intel sends.
    write("sgx-qe-identity-wrong-header.http",
          [("Content-Type", "application/json"), ("SGX-Enterprise-Identity-Issuer-Chain", pct(c["qe_identity_issuer_chain"]))],
          signed("enclaveIdentity", c["qe_identity"], c["qe_identity_signature"]))
    # PCCS rootcacrl: the root CA CRL as a hex string of its DER bytes.
    assert sets["sgx"]["root_ca_crl"] == sets["tdx"]["root_ca_crl"]
    write("rootcacrl.http", [], c["root_ca_crl"].encode(), "GET /sgx/certification/v4/rootcacrl")
    # Which request each response answers, one "METHOD TARGET FILE" a line.
    with open(os.path.join("responses", "requests.txt"), "w") as f:
        f.write("\n".join(INDEX) + "\n")


if __name__ == "__main__":
    main()
