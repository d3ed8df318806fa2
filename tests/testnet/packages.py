#!/usr/bin/python3
"""What the test internet's package hosts serve, written into DIRECTORY/www: a PyPI "simple" index with one pure
Python wheel (cordon-hello), an npm registry with one package (cordon-hello), and a git repository over git's dumb
HTTP protocol (/git/hello.git). So a sandbox's pip install, npm install and git clone have something real to fetch."""
import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

www = os.path.join(sys.argv[1], "www")
host = "https://pkgs.cordon.test"

# PyPI: a wheel is a zip with the module and its dist-info (METADATA, WHEEL, RECORD).
wheel_name = "cordon_hello-1.0-py3-none-any.whl"
files = {
    "cordon_hello/__init__.py": b"GREETING = 'hello from the test index'\n",
    "cordon_hello-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: cordon-hello\nVersion: 1.0\n",
    "cordon_hello-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: cordon-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = ""
for name, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record += f"{name},sha256={digest},{len(data)}\n"
record += "cordon_hello-1.0.dist-info/RECORD,,\n"
files["cordon_hello-1.0.dist-info/RECORD"] = record.encode()
wheel = io.BytesIO()
with zipfile.ZipFile(wheel, "w") as z:
    for name, data in files.items():
        z.writestr(name, data)
os.makedirs(os.path.join(www, "simple", "cordon-hello"), exist_ok=True)
os.makedirs(os.path.join(www, "packages"), exist_ok=True)
with open(os.path.join(www, "packages", wheel_name), "wb") as f:
    f.write(wheel.getvalue())
sha = hashlib.sha256(wheel.getvalue()).hexdigest()
with open(os.path.join(www, "simple", "index.html"), "w") as f:
    f.write('<html><body><a href="cordon-hello/">cordon-hello</a></body></html>\n')
with open(os.path.join(www, "simple", "cordon-hello", "index.html"), "w") as f:
    f.write(f'<html><body><a href="{host}/packages/{wheel_name}#sha256={sha}">{wheel_name}</a></body></html>\n')

# npm: a packument naming a tarball whose package/package.json says what it is.
package = json.dumps({"name": "cordon-hello", "version": "1.0.0", "main": "index.js"}).encode()
code = b"module.exports = 'hello from the test registry';\n"
tgz = io.BytesIO()
with tarfile.open(fileobj=tgz, mode="w:gz") as t:
    for name, data in (("package/package.json", package), ("package/index.js", code)):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        t.addfile(info, io.BytesIO(data))
os.makedirs(os.path.join(www, "npm", "cordon-hello", "-"), exist_ok=True)
with open(os.path.join(www, "npm", "cordon-hello", "-", "cordon-hello-1.0.0.tgz"), "wb") as f:
    f.write(tgz.getvalue())
integrity = "sha512-" + base64.b64encode(hashlib.sha512(tgz.getvalue()).digest()).decode()
packument = {
    "name": "cordon-hello",
    "dist-tags": {"latest": "1.0.0"},
    "versions": {"1.0.0": {"name": "cordon-hello", "version": "1.0.0", "main": "index.js",
                           "dist": {"tarball": f"{host}/npm/cordon-hello/-/cordon-hello-1.0.0.tgz",
                                    "shasum": hashlib.sha1(tgz.getvalue()).hexdigest(), "integrity": integrity}}},
}
with open(os.path.join(www, "npm", "cordon-hello", "index.html"), "w") as f:
    json.dump(packument, f)

# git: a bare repository with one commit, served as static files (git's dumb HTTP protocol).
repo = os.path.join(www, "git", "hello.git")
if not os.path.isdir(repo):
    work = os.path.join(sys.argv[1], "git-work")
    shutil.rmtree(work, ignore_errors=True)
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@cordon.test", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@cordon.test", HOME=sys.argv[1])
    subprocess.run(["git", "init", "-q", "-b", "main", work], check=True, env=env)
    with open(os.path.join(work, "README"), "w") as f:
        f.write("hello from the test repository\n")
    subprocess.run(["git", "-C", work, "add", "README"], check=True, env=env)
    subprocess.run(["git", "-C", work, "commit", "-q", "-m", "first"], check=True, env=env)
    subprocess.run(["git", "clone", "-q", "--bare", work, repo], check=True, env=env)
    subprocess.run(["git", "-C", repo, "update-server-info"], check=True, env=env)
    shutil.rmtree(work)
