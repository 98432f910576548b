"""What the cluster benchmarks (hack/bench-cluster.sh, hack/bench-scale.sh) share: a TLS
context for the admin kubeconfig of the local cluster, and a process's peak RSS."""
import base64
import os
import re
import ssl
import tempfile


def api(kubeconfig):
    """(host, port, ssl context) for the kubeconfig's server and client certificate."""
    text = open(kubeconfig).read()
    field = lambda k: re.search(rf"{k}: (\S+)", text).group(1)
    host, port = field("server").split("//")[1].rsplit(":", 1)
    tmp = tempfile.mkdtemp()
    for k, f in [("certificate-authority-data", "ca"), ("client-certificate-data", "crt"),
                 ("client-key-data", "key")]:
        open(f"{tmp}/{f}", "wb").write(base64.b64decode(field(k)))
    ctx = ssl.create_default_context(cafile=f"{tmp}/ca")
    ctx.load_cert_chain(f"{tmp}/crt", f"{tmp}/key")
    return host, int(port), ctx


def peak_rss_mib(program, arg=None):
    """Peak RSS (VmHWM, MiB) of the biggest process whose program ends with `program` (and
    that has `arg` on its command line): the installer runs --record=false, the recorder
    --install=false."""
    best = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = [a.decode() for a in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")]
            if argv[0].endswith(program) and (arg is None or arg in argv):
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmHWM:"):
                        best = max(best, int(line.split()[1]))
        except OSError:
            pass
    return best / 1024


def start_parallel(count, job, threads=8):
    """Run job(0) .. job(count - 1) on `threads` threads; returns the started threads."""
    import queue
    import threading

    q = queue.Queue()
    for i in range(count):
        q.put(i)

    def worker():
        while True:
            try:
                i = q.get_nowait()
            except queue.Empty:
                return
            job(i)

    started = [threading.Thread(target=worker) for _ in range(threads)]
    for t in started:
        t.start()
    return started
