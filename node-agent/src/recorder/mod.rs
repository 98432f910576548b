//! The eBPF syscall recorder: loads `bpf/recorder.bpf.c` with aya, attaches it to the raw
//! `sys_enter` tracepoint and `sched_process_exec`, and reads per-mount-namespace syscall sets.
//!
//! See the C source for the kernel side. The userspace contract:
//! - [`Recorder::watch`] a namespace before (or as soon as) its processes run: its syscalls are
//!   kept in a map that never evicts, until [`Recorder::take`];
//! - while [`Recorder::arm`]ed, namespaces nobody watched yet are recorded into a bounded LRU map
//!   from their first syscall; `watch` moves what was recorded so far, [`Recorder::ignore`] stops
//!   recording a namespace that is not wanted;
//! - bits are never cleared while a namespace is watched: reading is a copy, and `take`
//!   (copy, then delete) is for a namespace whose processes are gone.

pub mod procfs;

use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf, EbpfLoader, Pod};
use crds::model::Arch;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;

/// The compiled CO-RE object.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/recorder.bpf.o"));

const NR_WORDS: usize = 16;
const NR_CLASSES: usize = 3;
const FLAG_EXECED: u64 = 1;
const FLAG_IGNORED: u64 = 2;
const X32_SYSCALL_BIT: i32 = 0x4000_0000;
/// `BPF_NOEXIST` flag of bpf_map_update_elem.
const BPF_NOEXIST: u64 = 1;

const CGROUP_NAME_LEN: usize = 72;

/// Mirror of `struct ns_record`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NsRecord {
    flags: u64,
    gen: u64,
    cgroup: [u8; CGROUP_NAME_LEN],
    bits: [[[u64; NR_WORDS]; NR_CLASSES]; 2],
}

// SAFETY: plain old data, `repr(C)`, no padding, any bit pattern valid.
unsafe impl Pod for NsRecord {}

impl Default for NsRecord {
    fn default() -> Self {
        NsRecord {
            flags: 0,
            gen: 0,
            cgroup: [0; CGROUP_NAME_LEN],
            bits: [[[0; NR_WORDS]; NR_CLASSES]; 2],
        }
    }
}

const MAX_SLOTS: usize = 256;
const SLOT_BUCKETS: u64 = 1024;

/// Mirror of `struct config`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Config {
    host_mntns: u64,
    armed: u32,
    watched: u32,
    hashed: u32,
    pad: u32,
    slot_ns: [u64; MAX_SLOTS],
    slot_of: [u16; SLOT_BUCKETS as usize],
}

// SAFETY: plain old data, `repr(C)`, no padding (u64, 4 x u32, u64 array, u16 array).
unsafe impl Pod for Config {}

/// Which part of a namespace's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before its first exec: the container runtime's set-up.
    BeforeExec,
    /// From its first exec on: the container's own program.
    AfterExec,
}

impl NsRecord {
    /// Whether a process of the namespace has exec'd.
    pub fn execed(&self) -> bool {
        self.flags & FLAG_EXECED != 0
    }

    /// The name of the cgroup the namespace's program exec'd in (a container ID for the
    /// common runtimes), once it has exec'd.
    pub fn cgroup_name(&self) -> Option<String> {
        let end = self
            .cgroup
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(CGROUP_NAME_LEN);
        (end > 0).then(|| String::from_utf8_lossy(&self.cgroup[..end]).into_owned())
    }

    /// The never-reused id of the namespace the record belongs to (0 where the kernel has
    /// none).
    pub fn generation(&self) -> u64 {
        self.gen
    }

    /// Union of two records (bits and flags).
    pub fn union(&mut self, other: &NsRecord) {
        self.flags |= other.flags & FLAG_EXECED;
        if self.cgroup[0] == 0 {
            self.cgroup = other.cgroup;
        }
        for (a, b) in self
            .bits
            .iter_mut()
            .flatten()
            .flatten()
            .zip(other.bits.iter().flatten().flatten())
        {
            *a |= *b;
        }
    }

    /// Raw syscall numbers recorded in `phase`, per class (0 native, 1 ia32, 2 x32).
    pub fn numbers(&self, phase: Phase) -> [Vec<i32>; NR_CLASSES] {
        let p = match phase {
            Phase::BeforeExec => 0,
            Phase::AfterExec => 1,
        };
        std::array::from_fn(|class| {
            let mut v = Vec::new();
            for (w, word) in self.bits[p][class].iter().enumerate() {
                for bit in 0..64 {
                    if word & (1u64 << bit) != 0 {
                        v.push((w * 64 + bit) as i32);
                    }
                }
            }
            v
        })
    }

    /// Set a bit (for tests and for merging userspace knowledge).
    pub fn set(&mut self, phase: Phase, class: usize, nr: i32) {
        let p = usize::from(phase == Phase::AfterExec);
        let nr = nr as usize;
        self.bits[p][class][(nr / 64) % NR_WORDS] |= 1u64 << (nr % 64);
    }

    /// Syscall names per architecture, resolved by libseccomp: native numbers on the native
    /// architecture, compat numbers on the compat one (so ia32's 5 is `open`, not `fstat`).
    pub fn names(&self, phase: Phase) -> BTreeMap<Arch, BTreeSet<String>> {
        let native = Arch::native();
        let classes: [Option<(Arch, i32)>; NR_CLASSES] = match native {
            Arch::X86_64 => [
                Some((Arch::X86_64, 0)),
                Some((Arch::X86, 0)),
                Some((Arch::X32, X32_SYSCALL_BIT)),
            ],
            Arch::Aarch64 => [Some((Arch::Aarch64, 0)), Some((Arch::Arm, 0)), None],
            other => [Some((other, 0)), None, None],
        };
        let mut out: BTreeMap<Arch, BTreeSet<String>> = BTreeMap::new();
        for (class, nrs) in self.numbers(phase).into_iter().enumerate() {
            let Some((arch, offset)) = classes[class] else {
                continue;
            };
            for nr in nrs {
                let name = crate::seccomp::syscall_name(arch, nr | offset)
                    .unwrap_or_else(|| format!("__unknown_{}_{nr}", arch.as_str().to_lowercase()));
                out.entry(arch).or_default().insert(name);
            }
        }
        out
    }

    /// All names of `phase`, any architecture.
    pub fn all_names(&self, phase: Phase) -> BTreeSet<String> {
        self.names(phase).into_values().flatten().collect()
    }
}

/// Why the recorder could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// Not root (CAP_BPF/CAP_PERFMON/CAP_SYS_ADMIN are needed).
    #[error("the eBPF recorder needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN); run as root")]
    NotRoot,
    /// The kernel has no BTF.
    #[error("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing); the recorder needs a kernel built with CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf,
    /// Loading or attaching failed.
    #[error("loading the eBPF recorder failed: {0}")]
    Load(String),
    /// A map operation failed.
    #[error("eBPF map `{map}`: {err}")]
    Map {
        /// The map.
        map: &'static str,
        /// What failed.
        err: String,
    },
}

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> RecorderError {
    move |e| RecorderError::Map {
        map,
        err: e.to_string(),
    }
}

/// The inode of a process's mount namespace (`/proc/<pid>/ns/mnt`).
pub fn mntns_of(pid: &str) -> std::io::Result<u64> {
    Ok(std::fs::metadata(format!("/proc/{pid}/ns/mnt"))?.ino())
}

/// The loaded, attached recorder.
pub struct Recorder {
    ebpf: Ebpf,
    host_mntns: u64,
    armed: bool,
    slots: BTreeMap<u64, u32>,
    hashed: BTreeSet<u64>,
    extra: std::collections::HashMap<u64, NsRecord>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("host_mntns", &self.host_mntns)
            .field("armed", &self.armed)
            .finish()
    }
}

/// Load and attach an empty program on the recorder's hook: the floor any sys_enter program
/// costs, for benchmarks. Detached when the returned value is dropped.
pub fn load_empty_program() -> Result<Ebpf, RecorderError> {
    preflight()?;
    static EMPTY: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/empty.bpf.o"));
    let load = |e: &dyn std::fmt::Display| RecorderError::Load(e.to_string());
    let btf = Btf::from_sys_fs().map_err(|e| load(&e))?;
    let mut ebpf = EbpfLoader::new()
        .btf(Some(&btf))
        .load(EMPTY)
        .map_err(|e| load(&e))?;
    let p: &mut BtfTracePoint = ebpf
        .program_mut("sys_enter")
        .ok_or_else(|| load(&"program sys_enter missing"))?
        .try_into()
        .map_err(|e| load(&e))?;
    p.load("sys_enter", &btf).map_err(|e| load(&e))?;
    p.attach().map_err(|e| load(&e))?;
    Ok(ebpf)
}

/// Check that this process can load the recorder, with a plain reason when not.
pub fn preflight() -> Result<(), RecorderError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(RecorderError::NotRoot);
    }
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(RecorderError::NoBtf);
    }
    Ok(())
}

impl Recorder {
    /// Load and attach. The host's mount namespace (that of PID 1) is never recorded.
    pub fn load() -> Result<Self, RecorderError> {
        preflight()?;
        let load = |e: &dyn std::fmt::Display| RecorderError::Load(e.to_string());
        let btf = Btf::from_sys_fs().map_err(|e| load(&e))?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .load(OBJECT)
            .map_err(|e| load(&e))?;
        for (prog, tp) in [
            ("sys_enter", "sys_enter"),
            ("sched_process_exec", "sched_process_exec"),
        ] {
            let p: &mut BtfTracePoint = ebpf
                .program_mut(prog)
                .ok_or_else(|| load(&format!("program {prog} missing from the object")))?
                .try_into()
                .map_err(|e| load(&e))?;
            p.load(tp, &btf)
                .map_err(|e| load(&format!("{prog}: {e}")))?;
            p.attach()
                .map_err(|e| load(&format!("attaching {prog}: {e}")))?;
        }
        // The host's namespace is PID 1's; where PID 1 is not readable (some VMs' init), the
        // namespace this process runs in (seccompctl runs on the host).
        let host_mntns = mntns_of("1")
            .or_else(|_| mntns_of("self"))
            .map_err(|e| load(&format!("reading /proc/self/ns/mnt: {e}")))?;
        let mut r = Recorder {
            ebpf,
            host_mntns,
            armed: false,
            slots: Default::default(),
            hashed: Default::default(),
            extra: Default::default(),
        };
        r.write_config()?;
        Ok(r)
    }

    fn write_config(&mut self) -> Result<(), RecorderError> {
        let mut cfg = Config {
            host_mntns: self.host_mntns,
            armed: u32::from(self.armed),
            watched: (self.slots.len() + self.hashed.len()) as u32,
            hashed: self.hashed.len() as u32,
            pad: 0,
            slot_ns: [0; MAX_SLOTS],
            slot_of: [0; SLOT_BUCKETS as usize],
        };
        for (&ns, &slot) in &self.slots {
            cfg.slot_ns[slot as usize] = ns;
            cfg.slot_of[(ns % SLOT_BUCKETS) as usize] = slot as u16 + 1;
        }
        let mut map: Array<&mut MapData, Config> =
            Array::try_from(self.ebpf.map_mut("config").expect("config map"))
                .map_err(map_err("config"))?;
        map.set(0, cfg, 0).map_err(map_err("config"))
    }

    fn slot_map(&mut self) -> Result<Array<&mut MapData, NsRecord>, RecorderError> {
        Array::try_from(self.ebpf.map_mut("slots").expect("slots map")).map_err(map_err("slots"))
    }

    /// The host mount namespace the recorder skips.
    pub fn host_mntns(&self) -> u64 {
        self.host_mntns
    }

    /// Record (or stop recording) namespaces nobody asked for yet.
    pub fn arm(&mut self, on: bool) -> Result<(), RecorderError> {
        self.armed = on;
        self.write_config()
    }

    fn recording(&mut self) -> Result<BpfHashMap<&mut MapData, u64, NsRecord>, RecorderError> {
        BpfHashMap::try_from(self.ebpf.map_mut("recording").expect("recording map"))
            .map_err(map_err("recording"))
    }

    fn pending(&mut self) -> Result<BpfHashMap<&mut MapData, u64, NsRecord>, RecorderError> {
        BpfHashMap::try_from(self.ebpf.map_mut("pending").expect("pending map"))
            .map_err(map_err("pending"))
    }

    /// Record `mntns` until [`Recorder::take`]. What the armed recorder already has for it
    /// is carried over.
    ///
    /// The kernel-side record is created once and never written by userspace again (a
    /// read-modify-write could clear a bit the kernel sets in between); earlier bits from the
    /// pending map are kept in userspace and added on every read.
    pub fn watch(&mut self, mntns: u64) -> Result<(), RecorderError> {
        if !self.slots.contains_key(&mntns) && !self.hashed.contains(&mntns) {
            // The new record starts in the phase the namespace is in: a container found by
            // its cgroup has exec'd already, and its bits from now on are the program's.
            let start = self
                .pending()?
                .get(&mntns, 0)
                .map(|p| NsRecord {
                    flags: p.flags & FLAG_EXECED,
                    gen: p.gen,
                    cgroup: p.cgroup,
                    ..NsRecord::default()
                })
                .unwrap_or_default();
            let bucket_free = !self
                .slots
                .keys()
                .any(|ns| ns % SLOT_BUCKETS == mntns % SLOT_BUCKETS);
            let free = (0..MAX_SLOTS as u32).find(|s| !self.slots.values().any(|v| v == s));
            match free.filter(|_| bucket_free) {
                Some(slot) => {
                    // The record first, then publish the slot.
                    self.slot_map()?
                        .set(slot, start, 0)
                        .map_err(map_err("slots"))?;
                    self.slots.insert(mntns, slot);
                }
                None => {
                    match self.recording()?.insert(mntns, start, BPF_NOEXIST) {
                        Ok(()) => {}
                        Err(aya::maps::MapError::SyscallError(e))
                            if e.io_error.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(e) => return Err(map_err("recording")(e)),
                    }
                    self.hashed.insert(mntns);
                }
            }
            self.write_config()?;
        }
        let earlier = self.pending()?.get(&mntns, 0).ok();
        let entry = self.extra.entry(mntns).or_default();
        if let Some(p) = earlier {
            entry.union(&p);
        }
        Ok(())
    }

    /// Stop recording a namespace nobody wants (armed mode).
    pub fn ignore(&mut self, mntns: u64) -> Result<(), RecorderError> {
        let rec = NsRecord {
            flags: FLAG_IGNORED,
            ..NsRecord::default()
        };
        self.pending()?
            .insert(mntns, rec, 0)
            .map_err(map_err("pending"))
    }

    /// A copy of what is recorded for a watched namespace so far.
    pub fn read(&mut self, mntns: u64) -> Option<NsRecord> {
        let mut r = match self.slots.get(&mntns).copied() {
            Some(slot) => self.slot_map().ok()?.get(&slot, 0).ok()?,
            None if self.hashed.contains(&mntns) => self.recording().ok()?.get(&mntns, 0).ok()?,
            None => return None,
        };
        // Bits a CPU put in the pending map just as the namespace was being watched.
        if let Ok(p) = self
            .pending()
            .and_then(|m| m.get(&mntns, 0).map_err(map_err("pending")))
        {
            if p.flags & FLAG_IGNORED == 0 {
                r.union(&p);
            }
        }
        if let Some(extra) = self.extra.get(&mntns) {
            r.union(extra);
        }
        Some(r)
    }

    /// Namespaces the armed recorder met and nobody classified yet.
    pub fn pending_namespaces(&mut self) -> Vec<u64> {
        self.pending_records().into_iter().map(|(k, _)| k).collect()
    }

    /// Namespaces the armed recorder met and nobody classified yet, with what they recorded.
    pub fn pending_records(&mut self) -> Vec<(u64, NsRecord)> {
        let Ok(map) = self.pending() else {
            return Vec::new();
        };
        map.iter()
            .filter_map(Result::ok)
            .filter(|(_, r)| r.flags & FLAG_IGNORED == 0)
            .collect()
    }

    /// Final read of a namespace whose processes are gone: copy, then delete.
    pub fn take(&mut self, mntns: u64) -> Option<NsRecord> {
        let r = self.read(mntns)?;
        if let Some(slot) = self.slots.remove(&mntns) {
            let _ = self.write_config();
            let _ = self
                .slot_map()
                .map(|mut m| m.set(slot, NsRecord::default(), 0));
        }
        if self.hashed.remove(&mntns) {
            let _ = self.write_config();
            let _ = self.recording().map(|mut m| m.remove(&mntns));
        }
        let _ = self.pending().map(|mut m| m.remove(&mntns));
        self.extra.remove(&mntns);
        Some(r)
    }

    /// Counters: (namespaces newly met while armed, pending inserts that failed).
    pub fn stats(&mut self) -> (u64, u64) {
        let Some(m) = self.ebpf.map_mut("stats") else {
            return (0, 0);
        };
        let Ok(arr) = PerCpuArray::<&mut MapData, u64>::try_from(m) else {
            return (0, 0);
        };
        let sum = |i| arr.get(&i, 0).map(|v| v.iter().sum()).unwrap_or(0);
        (sum(0), sum(1))
    }
}
