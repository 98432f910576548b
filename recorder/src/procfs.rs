//! From mount namespaces to processes and containers, through /proc.

use std::collections::BTreeMap;
use std::path::Path;

/// The container ID in the lines of a `/proc/<pid>/cgroup` file, for the layouts of
/// containerd (cgroupfs and systemd drivers), CRI-O, Docker/moby, podman and plain runc
/// (whose cgroup is named after the container ID). `None` for host processes and runtime
/// helpers (e.g. CRI-O's conmon).
pub fn container_id_from_cgroup(content: &str) -> Option<String> {
    // cgroup v2 ("0::/path") first, then any v1 hierarchy.
    let mut paths: Vec<&str> = content
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .collect();
    paths.sort_by_key(|p| !content.contains(&format!("0::{p}")));
    for path in paths {
        for component in path.rsplit('/') {
            if let Some(id) = id_from_component(component) {
                return Some(id);
            }
        }
    }
    None
}

fn id_from_component(c: &str) -> Option<String> {
    let c = c.strip_suffix(".scope").unwrap_or(c);
    if c.contains("conmon") {
        return None;
    }
    let c = [
        "cri-containerd-",
        "crio-",
        "docker-",
        "libpod-",
        "containerd-",
    ]
    .iter()
    .find_map(|p| c.strip_prefix(p))
    .unwrap_or(c);
    (c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit())).then(|| c.to_ascii_lowercase())
}

/// A process: its PID, mount namespace and container ID (if any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    /// PID.
    pub pid: u32,
    /// Mount namespace inode.
    pub mntns: u64,
    /// Container ID from its cgroup.
    pub container_id: Option<String>,
}

/// Every process under `proc_root` (normally `/proc`) with its mount namespace and container.
/// Processes that exit while being read are skipped.
pub fn processes(proc_root: &Path) -> Vec<ProcInfo> {
    use std::os::unix::fs::MetadataExt;
    let Ok(rd) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(e.path().join("ns/mnt")) else {
            continue;
        };
        let container_id = std::fs::read_to_string(e.path().join("cgroup"))
            .ok()
            .and_then(|c| container_id_from_cgroup(&c));
        out.push(ProcInfo {
            pid,
            mntns: meta.ino(),
            container_id,
        });
    }
    out
}

/// Mount namespace → container ID, for every namespace that has a containerised process.
pub fn namespaces_by_container(procs: &[ProcInfo]) -> BTreeMap<u64, String> {
    procs
        .iter()
        .filter_map(|p| Some((p.mntns, p.container_id.clone()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e8a0c9b1d2e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f";

    #[test]
    fn containerd_cgroupfs_v2() {
        let c = format!("0::/kubepods/besteffort/pod0b5a9c1e-8d2f-4b7a-9c3e-1f2a3b4c5d6e/{ID}\n");
        assert_eq!(container_id_from_cgroup(&c).as_deref(), Some(ID));
    }

    #[test]
    fn containerd_systemd_v2() {
        let c = format!("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b5a9c1e_8d2f_4b7a_9c3e_1f2a3b4c5d6e.slice/cri-containerd-{ID}.scope\n");
        assert_eq!(container_id_from_cgroup(&c).as_deref(), Some(ID));
    }

    #[test]
    fn crio_and_its_conmon() {
        let c = format!("0::/kubepods.slice/kubepods-pod1.slice/crio-{ID}.scope\n");
        assert_eq!(container_id_from_cgroup(&c).as_deref(), Some(ID));
        let conmon = format!("0::/kubepods.slice/kubepods-pod1.slice/crio-conmon-{ID}.scope\n");
        assert_eq!(container_id_from_cgroup(&conmon), None);
    }

    #[test]
    fn cgroup_v1_hierarchies() {
        let c = format!("12:pids:/kubepods/besteffort/pod1/{ID}\n11:memory:/kubepods/besteffort/pod1/{ID}\n1:name=systemd:/kubepods/besteffort/pod1/{ID}\n0::/\n");
        assert_eq!(container_id_from_cgroup(&c).as_deref(), Some(ID));
    }

    #[test]
    fn docker_podman_and_plain_runc() {
        assert_eq!(
            container_id_from_cgroup(&format!("0::/system.slice/docker-{ID}.scope\n")).as_deref(),
            Some(ID)
        );
        assert_eq!(
            container_id_from_cgroup(&format!("0::/machine.slice/libpod-{ID}.scope/container\n"))
                .as_deref(),
            Some(ID)
        );
        assert_eq!(
            container_id_from_cgroup(&format!("0::/{ID}\n")).as_deref(),
            Some(ID)
        );
    }

    #[test]
    fn host_processes_have_none() {
        assert_eq!(container_id_from_cgroup("0::/init.scope\n"), None);
        assert_eq!(
            container_id_from_cgroup("0::/system.slice/containerd.service\n"),
            None
        );
        assert_eq!(
            container_id_from_cgroup("0::/user.slice/user-0.slice/session-1.scope\n"),
            None
        );
        assert_eq!(container_id_from_cgroup(""), None);
    }

    #[test]
    fn this_process_is_found() {
        let me = std::process::id();
        let procs = processes(Path::new("/proc"));
        assert!(procs.iter().any(|p| p.pid == me));
    }
}
