"""PyJWT peer figures for `make bench`: full verification (signature + exp/iat/iss/aud checks)
per algorithm, one core, on tokens with the runtime's claim shape signed by the same test keys
(src/auth/testdata). Prints one JSON object: {alg: verifications per second}."""
import json, os, sys, time

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
    out = {}
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
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(50):
                decode()
            n += 50
        out[alg] = n / (time.perf_counter() - start)
    print(json.dumps(out))

if __name__ == "__main__":
    main()
