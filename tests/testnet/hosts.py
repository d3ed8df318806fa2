#!/usr/bin/python3
"""The test internet's hosts: HTTP on 80, HTTPS on 443 (certificate from the test CA), a TCP echo on 7, and a
bulk source on 9 (sends N bytes asked for on its first line). Every address of the namespace answers; an HTTP
reply names the address that answered and the Host asked for, so tests see where a connection really went.
Runs inside the test internet's network namespace (tests/Shared/TestInternet.cs starts it)."""
import http.server
import json
import os
import socketserver
import ssl
import sys
import threading
import time

DIRECTORY = sys.argv[1]
RECORD_LOCK = threading.Lock()


class Reply(http.server.BaseHTTPRequestHandler):
    def body(self):
        """The request's body, Content-Length or chunked."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def do_POST(self):
        data = self.body()
        self.record(len(data))
        body = f"got {len(data)} bytes\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_POST

    def record(self, size=0):
        """Requests under /record/ are written to requests.log (one JSON line each: what arrived here, which the
        sandbox does not see), so tests can check what left the sandbox."""
        if not self.path.startswith("/record/"):
            return False
        line = json.dumps({"path": self.path, "address": self.connection.getsockname()[0], "body": size,
                           "headers": {k.lower(): v for k, v in self.headers.items()}})
        with RECORD_LOCK, open(os.path.join(DIRECTORY, "requests.log"), "a") as log:
            log.write(line + "\n")
        return True

    def do_GET(self):
        if self.record():
            self.send_response(200)
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"recorded\n")
            return
        if self.path.startswith("/bytes/"):
            size = int(self.path[len("/bytes/"):])
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = b"x" * 65536
            while size > 0:
                self.wfile.write(chunk[:min(size, len(chunk))])
                size -= len(chunk)
            return
        if self.path.startswith("/drip/"):
            # A line every 0.2 s for N seconds: a connection that stays open while a test changes a policy.
            seconds = int(self.path[len("/drip/"):])
            self.send_response(200)
            self.end_headers()
            for i in range(seconds * 5):
                try:
                    self.wfile.write(f"drip {i}\n".encode())
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.2)
            return
        # The package index, registry and repository tests install from (tests/testnet/up fills www/).
        path = os.path.normpath(os.path.join(DIRECTORY, "www", self.path.split("?")[0].lstrip("/")))
        if path.startswith(os.path.join(DIRECTORY, "www")) and os.path.isdir(path) and os.path.isfile(os.path.join(path, "index.html")):
            path = os.path.join(path, "index.html")
        if path.startswith(os.path.join(DIRECTORY, "www")) and os.path.isfile(path):
            with open(path, "rb") as f:
                body = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json" if path.endswith(".json") or "/npm/" in path else "application/octet-stream" if not path.endswith(".html") else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        headers = "".join(f"{k.lower()}: {v}\n" for k, v in self.headers.items())
        body = f"hello from {self.connection.getsockname()[0]} for {self.headers.get('Host', '')}\n{headers}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()


serve(Server(("0.0.0.0", 80), Reply))
tls = Server(("0.0.0.0", 443), Reply)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(os.path.join(DIRECTORY, "host.crt"), os.path.join(DIRECTORY, "host.key"))
tls.socket = context.wrap_socket(tls.socket, server_side=True)
serve(tls)
serve(TcpServer(("0.0.0.0", 7), Echo))
open(os.path.join(DIRECTORY, "ready"), "w").close()
threading.Event().wait()
