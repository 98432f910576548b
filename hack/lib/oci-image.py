#!/usr/bin/env python3
"""Writes an OCI image layout tarball from a root file system directory, without a registry or
a container engine, for `ctr images import`.

usage: oci-image.py --rootfs DIR --name localhost/x:tag --out x.tar
                    [--entrypoint JSON-list] [--cmd JSON-list] [--user U] [--env K=V ...]
"""
import argparse, gzip, hashlib, io, json, os, tarfile, time


def add_blob(blobs, data):
    digest = hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"digest": f"sha256:{digest}", "size": len(data)}


def layer_tar(rootfs):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                arc = os.path.relpath(full, rootfs)
                info = t.gettarinfo(full, arcname=arc)
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = 0
                if info.isfile():
                    with open(full, "rb") as f:
                        t.addfile(info, f)
                else:
                    t.addfile(info)
    diff = raw.getvalue()
    return diff, gzip.compress(diff, compresslevel=6, mtime=0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--entrypoint", default="null")
    ap.add_argument("--cmd", default="null")
    ap.add_argument("--user", default="")
    ap.add_argument("--env", action="append", default=[])
    a = ap.parse_args()

    blobs = {}
    diff, gz = layer_tar(a.rootfs)
    layer = add_blob(blobs, gz)
    layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    cfg = {
        "architecture": "amd64" if os.uname().machine == "x86_64" else "arm64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"] + a.env,
                   "Entrypoint": json.loads(a.entrypoint), "Cmd": json.loads(a.cmd),
                   "User": a.user, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(diff).hexdigest()}"]},
        "history": [{"created_by": "hack/lib/oci-image.py"}],
    }
    config = add_blob(blobs, json.dumps(cfg, sort_keys=True).encode())
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config, "layers": [layer]}
    mdesc = add_blob(blobs, json.dumps(manifest, sort_keys=True).encode())
    mdesc["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    mdesc["annotations"] = {"io.containerd.image.name": a.name,
                            "org.opencontainers.image.ref.name": a.name.rsplit(":", 1)[-1]}
    mdesc["platform"] = {"architecture": cfg["architecture"], "os": "linux"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [mdesc]}

    with tarfile.open(a.out, "w") as t:
        def put(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            t.addfile(info, io.BytesIO(data))
        put("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        put("index.json", json.dumps(index).encode())
        for digest, data in blobs.items():
            put(f"blobs/sha256/{digest}", data)


if __name__ == "__main__":
    main()
