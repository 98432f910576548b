"""What the cluster benchmarks (hack/bench-cluster.sh, hack/bench-scale.sh) share: a TLS
context for the admin kubeconfig of the local cluster, a process's peak RSS, and reading
Prometheus metrics (samples, a histogram's quantile)."""
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


# One sample of the Prometheus text format: name, optional {labels}, value (a timestamp may follow).
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text, prefix=""):
    """(name, {label: value}, number) of each sample in a /metrics text whose line starts with
    `prefix` (a cheap filter: the API server's text is megabytes)."""
    samples = []
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        m = SAMPLE.match(line)
        if m:
            samples.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return samples


def histogram_quantile(buckets, q):
    """The q-quantile of a histogram given as {upper bound: cumulative count} (+Inf as inf),
    interpolated linearly inside its bucket as Prometheus does; inf when it lies past the last
    finite bound, None when the histogram is empty."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for upper in bounds:
        count = buckets[upper]
        if count >= rank:
            if upper == float("inf"):
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return float("inf")
