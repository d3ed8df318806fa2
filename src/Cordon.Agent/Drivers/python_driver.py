# Cordon code-context driver: Python on IPython's shell in this process, any other language through its
# Jupyter kernel, and plain Python when the image has neither IPython nor a kernel.
# The agent starts it with the context's channel on fd 3: newline-delimited JSON both ways.
#   agent -> driver: {"op": "run", "code": "..."}       (interrupts arrive as SIGINT)
#   driver -> agent: {"type": "ready", ...} then per run: stdout | stderr | result | error ... end
# Usage: python3 -c <this file> <kernel name or language> [end-of-run marker]
import contextlib
import io
import json
import os
import re
import socket
import sys
import threading

os.set_inheritable(3, False)  # the kernel and the code's child processes must not hold the channel
channel = socket.socket(fileno=3)
reader = channel.makefile("r", encoding="utf-8", newline="\n")
send_lock = threading.Lock()
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MARKER = sys.argv[2].encode() if len(sys.argv) > 2 else b""


def send(event):
    line = (json.dumps(event, ensure_ascii=False, default=repr) + "\n").encode("utf-8")
    with send_lock:
        channel.sendall(line)


def requests():
    for line in reader:
        line = line.strip()
        if line:
            yield json.loads(line)


class Stream(io.TextIOBase):
    """sys.stdout or sys.stderr of the code: line-buffered, so a print arrives as one event, not as its text and
    its newline. Code that writes to the descriptor itself (fileno()) reaches the agent through the driver's own
    stdout or stderr."""

    encoding = "utf-8"
    errors = "strict"

    def __init__(self, kind):
        self.kind = kind
        self.pending = ""

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        return 1 if self.kind == "stdout" else 2

    def write(self, text):
        self.pending += text
        cut = self.pending.rfind("\n")
        if cut >= 0:
            send({"type": self.kind, "text": self.pending[: cut + 1]})
            self.pending = self.pending[cut + 1 :]
        return len(text)

    def flush(self):
        if self.pending:
            send({"type": self.kind, "text": self.pending})
            self.pending = ""


def end_of_output():
    """Ends a run's output: what print() holds back, then the agent's marker on the driver's own stdout and
    stderr, where child processes and fileno() writes arrive; the agent ends the run after both markers."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, MARKER)
    os.write(2, MARKER)


@contextlib.contextmanager
def run_environment(request):
    """The run's own environment variables, set for the run only."""
    env = request.get("env") or {}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def find_kernel(wanted):
    """A kernelspec by name, or the first whose language is the one asked for."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().get_all_specs()
    if wanted in specs:
        return wanted, specs[wanted]["spec"].get("language", wanted)
    if wanted == "python" and "python3" in specs:
        return "python3", "python"
    for name, entry in sorted(specs.items()):
        if entry["spec"].get("language", "").lower() == wanted:
            return name, wanted
    return None, None


def run_jupyter(kernel_name, language):
    import signal
    from jupyter_client.manager import KernelManager

    env = dict(os.environ)
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env.pop("MPLBACKEND", None)  # the inline backend shows figures without savefig
    manager = KernelManager(kernel_name=kernel_name)
    # Messages are not signed: the kernel's ports are on the sandbox's own loopback, where every process runs
    # with the same rights as the kernel and could read its connection file anyway. Saves a hash per message.
    manager.session.key = b""
    manager.start_kernel(env=env, cwd=os.getcwd(), stdout=sys.stderr, stderr=sys.stderr)
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=120)

    # The agent interrupts a run with SIGINT to this process; the kernel gets Jupyter's interrupt.
    signal.signal(signal.SIGINT, lambda *_: manager.interrupt_kernel())
    send({"type": "ready", "kernel": kernel_name, "language": language, "interrupt": "signal"})
    for request in requests():
        if request.get("op") == "run":
            env = request.get("env") or {}
            if env:
                quietly(client, "import os as _cordon_os\n_cordon_saved = {k: _cordon_os.environ.get(k) for k in %r}\n_cordon_os.environ.update(%r)" % (list(env), env))
            execute(manager, client, request.get("code", ""))
            if env:
                quietly(client, "for _cordon_k, _cordon_v in _cordon_saved.items():\n    _cordon_os.environ.pop(_cordon_k, None) if _cordon_v is None else _cordon_os.environ.__setitem__(_cordon_k, _cordon_v)\ndel _cordon_saved, _cordon_k, _cordon_v, _cordon_os")
    manager.shutdown_kernel(now=True)


def quietly(client, code):
    """Runs bookkeeping code (a run's environment) without output, history or an execution count."""
    msg_id = client.execute(code, silent=True, store_history=False)
    while True:
        message = client.get_iopub_msg(timeout=30)
        if message["parent_header"].get("msg_id") == msg_id and message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            break
    while client.get_shell_msg(timeout=30)["parent_header"].get("msg_id") != msg_id:
        pass


def execute(manager, client, code):
    msg_id = client.execute(code, store_history=True, allow_stdin=False)
    count = None
    status = "ok"
    while True:
        try:
            message = client.get_iopub_msg(timeout=1)
        except Exception:  # queue.Empty: check the kernel is still alive
            if not manager.is_alive():
                # The agent reports the death to the run (and the context as dead) once this process is gone.
                os._exit(3)
            continue
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        kind = message["msg_type"]
        content = message["content"]
        if kind == "stream":
            send({"type": "stdout" if content["name"] == "stdout" else "stderr", "text": content["text"]})
        elif kind == "execute_result":
            count = content.get("execution_count")
            send({"type": "result", "data": content["data"], "metadata": content.get("metadata") or None, "isMainResult": True, "executionCount": count})
        elif kind in ("display_data", "update_display_data"):
            send({"type": "result", "data": content["data"], "metadata": content.get("metadata") or None, "isMainResult": False})
        elif kind == "error":
            status = "error"
            send({"type": "error", "name": content["ename"], "value": content["evalue"], "traceback": [ANSI.sub("", line) for line in content["traceback"]]})
        elif kind == "execute_input":
            count = content.get("execution_count", count)
        elif kind == "status" and content["execution_state"] == "idle":
            break
    # Take the execute_reply off the shell channel (it is there by now), or replies pile up run after run.
    while True:
        try:
            reply = client.get_shell_msg(timeout=5)
        except Exception:  # queue.Empty: no reply; nothing more to wait for
            break
        if reply["parent_header"].get("msg_id") == msg_id:
            count = reply["content"].get("execution_count", count)
            break
    send({"type": "end", "status": status, "executionCount": count})


def run_ipython():
    """Python on IPython's own shell in this process: the same execution, display and traceback machinery as
    ipykernel (magics, `!cmd`, inline matplotlib, rich reprs), without the kernel's message hops, which cost
    several milliseconds per run. Output goes straight to the channel; interrupts arrive as SIGINT."""
    import signal
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    class Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            send({"type": "result", "data": data, "metadata": metadata or None, "isMainResult": False})

        def clear_output(self, wait=False):
            pass

    class Hook(DisplayHook):
        def start_displayhook(self):
            pass

        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            send({"type": "result", "data": format_dict, "metadata": md_dict or None, "isMainResult": True, "executionCount": self.shell.execution_count})

        def finish_displayhook(self):
            pass

    class Shell(InteractiveShell):
        def _showtraceback(self, etype, evalue, stb):
            send({"type": "error", "name": etype.__name__, "value": str(evalue), "traceback": [ANSI.sub("", line) for line in stb]})

    os.environ.pop("MPLBACKEND", None)
    shell = Shell.instance(displayhook_class=Hook, display_pub_class=Publisher, colors="NoColor")
    try:
        shell.enable_matplotlib("inline")
    except Exception:  # noqa: BLE001 - no matplotlib in this image: plots simply are not captured
        pass
    sys.stdout, sys.stderr = Stream("stdout"), Stream("stderr")

    running = False

    def interrupt(*_):
        if running:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    # Child processes (os.system, !cmd) write to this process's own stdout and stderr, which the agent reads
    # directly; the marker after each run tells it when it has all of a run's output.
    send({"type": "ready", "kernel": None, "language": "python", "interrupt": "signal", "markers": True})
    for request in requests():
        if request.get("op") != "run":
            continue
        running = True
        try:
            with run_environment(request):
                result = shell.run_cell(request.get("code", ""), store_history=True)
        finally:
            running = False
        end_of_output()
        status = "ok" if result.success else "error"
        send({"type": "end", "status": status, "executionCount": shell.execution_count - 1})


def run_plain():
    """Python without Jupyter: exec in one namespace, the last expression's value as the result,
    matplotlib figures (Agg) captured as PNG after each run, KeyboardInterrupt on SIGINT."""
    import ast
    import base64
    import signal
    import traceback

    os.environ.setdefault("MPLBACKEND", "Agg")
    namespace = {"__name__": "__main__"}
    count = 0
    running = False

    # An interrupt that arrives between runs (it raced the end of one) must not end the interpreter and its state.
    def interrupt(*_):
        if running:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    sys.stdout, sys.stderr = Stream("stdout"), Stream("stderr")
    send({"type": "ready", "kernel": None, "language": "python", "interrupt": "signal", "markers": True})
    for request in requests():
        if request.get("op") != "run":
            continue
        count += 1
        status = "ok"
        running = True
        try:
            with run_environment(request):
                tree = ast.parse(request.get("code", ""), "<cell>", "exec")
                last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
                exec(compile(tree, "<cell>", "exec"), namespace)
                if last is not None:
                    value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
                    if value is not None:
                        data = {"text/plain": repr(value)}
                        if hasattr(value, "_repr_html_"):
                            data["text/html"] = value._repr_html_()
                        send({"type": "result", "data": data, "isMainResult": True, "executionCount": count})
        except BaseException as error:  # noqa: BLE001 - every error belongs to the user's code
            status = "error"
            lines = traceback.format_exception(type(error), error, error.__traceback__)
            send({"type": "error", "name": type(error).__name__, "value": str(error), "traceback": lines})
        finally:
            running = False
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            for number in plt.get_fignums():
                buffer = io.BytesIO()
                plt.figure(number).savefig(buffer, format="png")
                send({"type": "result", "data": {"image/png": base64.b64encode(buffer.getvalue()).decode(), "text/plain": "<Figure>"}, "isMainResult": False})
            plt.close("all")
        end_of_output()
        send({"type": "end", "status": status, "executionCount": count})


def has_ipython():
    try:
        import IPython  # noqa: F401 - only asks whether IPython is installed
    except ImportError:
        return False
    return True


def main():
    wanted = sys.argv[1].lower()
    # "python" runs on IPython here; "python3" (ipykernel's kernelspec name) on the kernel itself, or like
    # "python" in an image without one.
    if wanted == "python" and has_ipython():
        run_ipython()
        return
    try:
        kernel, language = find_kernel(wanted)
    except ImportError:
        kernel, language = None, None
    if kernel is not None:
        run_jupyter(kernel, language)
    elif wanted in ("python", "python3") and has_ipython():
        run_ipython()
    elif wanted in ("python", "python3"):
        run_plain()
    else:
        send({"type": "failed", "value": f"no Jupyter kernel for '{wanted}' is installed in this sandbox's image"})


main()
