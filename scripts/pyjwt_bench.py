"""PyJWT peer figures for `make bench`: full verification (signature + exp/iat/iss/aud checks)
per algorithm, one core, on tokens with the runtime's claim shape signed by the same test keys
(src/auth/testdata); and, as PyJWT's floor, the same signatures checked by `cryptography`
(OpenSSL) alone, keys parsed beforehand. Prints one JSON object:
{"pyjwt": {alg: verifications per second}, "signature": {alg: checks per second}}."""
import base64, hashlib, hmac, json, os, sys, time

import jwt  # pip install "pyjwt[crypto]"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TD = os.path.join(ROOT, "src", "auth", "testdata")
SECRET = b"0123456789abcdef0123456789abcdef-bench"

def read(name):
    with open(os.path.join(TD, name), "rb") as f:
        return f.read()

def main():
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    keys = {
        "HS256": (SECRET, SECRET),
        "RS256": (read("test-rsa2048.pem"), None),
        "PS256": (read("test-rsa2048.pem"), None),
        "ES256": (read("test-p256.pem"), None),
        "ES384": (read("test-p384.pem"), None),
        "EdDSA": (read("test-ed25519.pem"), None),
    }
    now = int(time.time())
    claims = {
        "iss": "https://issuer.example", "aud": "mozaiks-runtime", "sub": "u", "app_id": "a",
        "user_id": "u", "chat_id": "c", "workflow_id": "hello", "mozaiks_token_use": "execution",
        "scope": "workflow:execute", "roles": ["member"], "plan": "pro", "iat": now, "exp": now + 3600,
    }
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    out, floor = {}, {}
    for alg, (signing, verifying) in keys.items():
        if verifying is None:
            private = load_pem_private_key(signing, password=None)
            verifying = private.public_key()
            signing = private
        token = jwt.encode(claims, signing, algorithm=alg)
        opts = {"require": ["exp", "iat", "iss", "aud"]}
        decode = lambda: jwt.decode(token, verifying, algorithms=[alg], audience="mozaiks-runtime",
                                    issuer="https://issuer.example", options=opts)
        decode()
        out[alg] = rate(decode, seconds)
        check = signature_check(alg, token, verifying)
        check()
        floor[alg] = rate(check, seconds)
    print(json.dumps({"pyjwt": out, "signature": floor}))

def rate(f, seconds):
    """Calls of `f` per second, over about `seconds`."""
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            f()
        n += 50
    return n / (time.perf_counter() - start)

def signature_check(alg, token, key):
    """`token`'s signature checked by cryptography (or hmac) alone: raises if it is invalid."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
    signing_input, _, sig = token.rpartition(".")
    message = signing_input.encode()
    sig = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    if alg == "HS256":
        def check():
            if not hmac.compare_digest(hmac.new(key, message, hashlib.sha256).digest(), sig):
                raise ValueError("bad HS256 signature")
        return check
    if alg in ("ES256", "ES384"):
        half = len(sig) // 2
        der = utils.encode_dss_signature(int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big"))
        algorithm = ec.ECDSA(hashes.SHA256() if alg == "ES256" else hashes.SHA384())
        return lambda: key.verify(der, message, algorithm)
    if alg == "RS256":
        return lambda: key.verify(sig, message, padding.PKCS1v15(), hashes.SHA256())
    if alg == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)
        return lambda: key.verify(sig, message, pss, hashes.SHA256())
    return lambda: key.verify(sig, message)  # EdDSA

if __name__ == "__main__":
    main()
