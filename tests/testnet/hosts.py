#!/usr/bin/python3
"""The test internet's hosts: HTTP on 80, HTTPS on 443 (certificate from the test CA), a TCP echo on 7, and a
bulk source on 9 (sends N bytes asked for on its first line). Every address of the namespace answers; an HTTP
reply names the address that answered and the Host asked for, so tests see where a connection really went.
Runs inside the test internet's network namespace (tests/Shared/TestInternet.cs starts it)."""
import http.server
import os
import socketserver
import ssl
import sys
import threading

DIRECTORY = sys.argv[1]


class Reply(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
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
        if self.path.startswith("/files/"):
            path = os.path.join(DIRECTORY, "files", os.path.basename(self.path))
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    body = f.read()
                self.send_response(200)
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
