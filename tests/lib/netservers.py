# SPDX-License-Identifier: MIT
"""Servers on loopback for the network tests: plain HTTP (recording what it was asked), HTTPS
with a CA of the test's own, a PyPI "simple" index with a wheel built here, a server that
trickles or floods, and a DNS server whose answers change (rebinding)."""

import hashlib
import http.server
import io
import os
import socket
import socketserver
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import zipfile


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class HttpServer:
    """GET/POST on (addr, port): answers "hello <path> host=<Host>" and records every request
    line and Host header, and every connection."""

    def __init__(self, addr="127.0.0.2", routes=None, tls_context=None):
        outer = self
        self.requests = []
        self.connections = 0
        self.routes = routes or {}

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                outer.connections += 1
                super().setup()

            def _answer(self, body_in=b""):
                outer.requests.append((self.command, self.path, self.headers.get("Host"), body_in,
                                       {k.lower(): v for k, v in self.headers.items()}))
                route = outer.routes.get(self.path.split("?")[0])
                if callable(route):
                    return route(self)
                ctype = "text/plain"
                if isinstance(route, tuple):
                    ctype, route = route
                body = route if route is not None else f"hello {self.path} host={self.headers.get('Host')}\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._answer()

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(n))

            def log_message(self, *a):
                pass

        self.server = _Server((addr, 0), H)
        if tls_context:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.addr = addr
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class TestCA:
    """A CA and one server certificate for the given names, made with openssl."""

    def __init__(self, names):
        self.dir = tempfile.TemporaryDirectory(prefix="isol8-ca-")
        d = self.dir.name
        self.ca_pem = os.path.join(d, "ca.pem")
        self.cert = os.path.join(d, "server.pem")
        self.key = os.path.join(d, "server.key")

        def run(*a):
            subprocess.run(a, check=True, capture_output=True, cwd=d)
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=isol8 test CA")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", f"/CN={names[0]}")
        with open(os.path.join(d, "ext.cnf"), "w") as f:
            f.write("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n")
        run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")

    def server_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def ca_text(self):
        with open(self.ca_pem) as f:
            return f.read()


def build_wheel(name, version, module_text):
    """A pure-Python wheel (bytes) with one module `name`."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": module_text.encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: isol8-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
            import base64
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
        record.append(f"{dist}/RECORD,,")
        z.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return buf.getvalue()


def pypi_routes(name, version, wheel):
    """Routes of an HttpServer that make it a PEP 503 simple index with one wheel."""
    fname = f"{name}-{version}-py3-none-any.whl"
    sha = hashlib.sha256(wheel).hexdigest()
    page = (f'<!DOCTYPE html><html><body><a href="/files/{fname}#sha256={sha}">{fname}</a></body></html>').encode()
    return {f"/simple/{name}/": ("text/html", page), f"/files/{fname}": ("application/octet-stream", wheel)}


class DribbleServer:
    """TCP on (addr, port) that answers any request with an endless body, `chunk` bytes every
    `interval` seconds (0: as fast as the reader takes it)."""

    def __init__(self, addr="127.0.0.2", chunk=65536, interval=0.0, declare_length=True):
        self.head = (b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n" if declare_length
                     else b"HTTP/1.0 200 OK\r\n\r\n")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.sent = 0
        threading.Thread(target=self._accept, args=(chunk, interval), daemon=True).start()

    def _accept(self, chunk, interval):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c, chunk, interval), daemon=True).start()

    def _serve(self, c, chunk, interval):
        try:
            c.recv(65536)
            c.sendall(self.head)
            data = b"x" * chunk
            while not self.stop:
                c.sendall(data)
                self.sent += len(data)
                if interval:
                    time.sleep(interval)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.sock.close()


class RebindingDns:
    """A DNS server on (addr, 53/udp) that answers A queries for every name with `first` once per
    name, then with `then`: a name checked once and looked up again would move."""

    def __init__(self, addr, first, then):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((addr, 53))
        self.first, self.then = first, then
        self.seen = {}
        self.queries = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return
            try:
                self.sock.sendto(self._answer(data), peer)
            except Exception:
                pass

    def _answer(self, q):
        tid, flags, qd = struct.unpack(">HHH", q[:6])
        i, labels = 12, []
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode())
            i += 1 + q[i]
        qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
        question = q[12:i + 5]
        name = ".".join(labels).lower()
        head = struct.pack(">HHHHHH", tid, 0x8180, 1, 0, 0, 0)
        if qtype != 1:      # AAAA and the rest: no data
            return head + question
        self.queries += 1
        n = self.seen.get(name, 0)
        self.seen[name] = n + 1
        addr = self.first if n == 0 else self.then
        answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 0, 4) + socket.inet_aton(addr)
        return struct.pack(">HHHHHH", tid, 0x8180, 1, 1, 0, 0) + question + answer

    def close(self):
        self.sock.close()


def build_npm_tarball(name, version, files):
    """An npm package tarball (bytes): package/package.json and the given files under package/."""
    import gzip
    import json
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        entries = dict(files)
        entries["package.json"] = json.dumps({"name": name, "version": version, "main": "index.js"})
        for path, text in entries.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{path}")
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue())


def npm_routes(base_url, name, version, tarball):
    """Routes of an HttpServer that make it an npm registry with one package (its packument and
    its tarball, with the integrity npm checks)."""
    import base64
    import json
    tgz = f"/{name}/-/{name}-{version}.tgz"
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    packument = {
        "name": name, "dist-tags": {"latest": version},
        "versions": {version: {"name": name, "version": version, "main": "index.js",
                               "dist": {"tarball": base_url.rstrip("/") + tgz, "integrity": integrity,
                                        "shasum": hashlib.sha1(tarball).hexdigest()}}},
    }
    return {f"/{name}": ("application/json", json.dumps(packument).encode()),
            tgz: ("application/octet-stream", tarball)}


class FakeChatServer:
    """An OpenAI-compatible chat completions endpoint (streamed, as pi asks) on (addr, port)
    with a script: the first answer of a conversation calls the tool `tool` with `arguments`;
    once the conversation holds the tool's result, the answer is "ANSWER: " + that result.
    `requests` keeps (path, headers, body) of each call."""

    def __init__(self, addr="127.0.0.2", tool="bash", arguments=None):
        import http.server
        import json
        outer = self
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.requests.append((self.path, dict(self.headers), body))
                results = [m for m in body.get("messages", []) if m.get("role") == "tool"]
                if not results:
                    delta = {"role": "assistant", "content": None, "tool_calls": [{
                        "index": 0, "id": "call_1", "type": "function",
                        "function": {"name": tool, "arguments": json.dumps(arguments or {})}}]}
                    finish = "tool_calls"
                else:
                    out = results[-1].get("content")
                    if isinstance(out, list):
                        out = "".join(p.get("text", "") for p in out)
                    delta, finish = {"role": "assistant", "content": f"ANSWER: {str(out).strip()}"}, "stop"
                chunks = [{"id": "c", "object": "chat.completion.chunk", "created": 0, "model": body.get("model"),
                           "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
                          {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": body.get("model"),
                           "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for c in chunks:
                    self.wfile.write(f"data: {json.dumps(c)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

        self.server = http.server.ThreadingHTTPServer((addr, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def build_deb(name, version, files, depends=""):
    """A Debian binary package (bytes) made with dpkg-deb: files maps absolute paths to text
    (programs under /usr/bin get mode 0755)."""
    tmp = tempfile.mkdtemp(prefix="isol8-deb-")
    try:
        root = os.path.join(tmp, "root")
        os.makedirs(os.path.join(root, "DEBIAN"))
        control = f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: isol8 tests <t@example.invalid>\n"
        if depends:
            control += f"Depends: {depends}\n"
        control += f"Description: {name} for the isol8 tests\n"
        with open(os.path.join(root, "DEBIAN", "control"), "w") as f:
            f.write(control)
        for path, text in files.items():
            dest = os.path.join(root, path.lstrip("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "w") as f:
                f.write(text)
            os.chmod(dest, 0o755 if "/bin/" in path else 0o644)
        out = os.path.join(tmp, "p.deb")
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, out], check=True, capture_output=True)
        with open(out, "rb") as f:
            return f.read()
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


def debian_routes(suite, debs, arch="amd64", prefix="/debian"):
    """Routes of an HttpServer that make it a Debian mirror of one suite (main, one architecture)
    holding debs: {(name, version, depends): bytes}."""
    import gzip
    stanzas = []
    routes = {}
    for (name, version, depends), data in debs.items():
        filename = f"pool/main/{name[0]}/{name}/{name}_{version}_all.deb"
        routes[f"{prefix}/{filename}"] = ("application/vnd.debian.binary-package", data)
        st = f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        if depends:
            st += f"Depends: {depends}\n"
        st += f"Filename: {filename}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
        stanzas.append(st)
    index = "\n".join(stanzas).encode()
    base = f"{prefix}/dists/{suite}/main/binary-{arch}/Packages"
    routes[base + ".gz"] = ("application/gzip", gzip.compress(index))
    return routes


def probe_indexes(addr="127.0.0.2", npm_host="npm.test"):
    """A PyPI "simple" index with the wheel isol8probe 1.0 (ANSWER = 42) and an npm registry with
    isol8probe-js 1.0.0 ({answer: 42}) on addr: (pypi, npm, the registry's base URL by npm_host)."""
    wheel = build_wheel("isol8probe", "1.0", "ANSWER = 42\n")
    pypi = HttpServer(addr, routes=pypi_routes("isol8probe", "1.0", wheel))
    npm = HttpServer(addr)
    base = f"http://{npm_host}:{npm.port}/"
    tarball = build_npm_tarball("isol8probe-js", "1.0.0", {"index.js": "module.exports = { answer: 42 };\n"})
    npm.routes.update(npm_routes(base, "isol8probe-js", "1.0.0", tarball))
    return pypi, npm, base
