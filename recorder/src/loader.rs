//! Loading and attaching the recorder, and its map operations.

use crate::layout::{Config, Note, NsRecord, BPF_NOEXIST, MAX_SLOTS, NOTE_LEN, SLOT_BUCKETS};
use crate::layout::{FLAG_EXECED, FLAG_IGNORED, NR_WORDS};
use crate::pins::{PINNED_MAPS, PROGRAMS};
use crate::{load_err, map_err, mntns_of, RecorderError};
use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf, EbpfLoader};
use seccomp_profile::{Arch, ArgKind};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The compiled CO-RE object.
pub(crate) static OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/recorder.bpf.o"));

/// The loaded, attached recorder.
pub struct Recorder {
    ebpf: Ebpf,
    host_mntns: u64,
    armed: bool,
    slots: BTreeMap<u64, u32>,
    hashed: BTreeSet<u64>,
    ignored: std::collections::HashMap<u64, u64>,
    ignored_order: std::collections::VecDeque<u64>,
    /// Where maps and links are pinned (in-cluster), so that the programs keep recording
    /// while the agent restarts and the next agent process takes over their maps.
    pin_dir: Option<PathBuf>,
    links: Vec<PinnedLink>,
    resumed: bool,
}

/// Ignored namespaces kept in the config's direct-mapped table (one per bucket at most).
const IGNORED_MAX: usize = 4 * SLOT_BUCKETS as usize;

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
    let btf = Btf::from_sys_fs().map_err(load_err("reading the kernel's BTF"))?;
    let mut ebpf = EbpfLoader::new()
        .btf(Some(&btf))
        .load(EMPTY)
        .map_err(load_err("loading the object"))?;
    let p: &mut BtfTracePoint = ebpf
        .program_mut("sys_enter")
        .ok_or_else(|| load_err("finding sys_enter")("program missing from the object"))?
        .try_into()
        .map_err(load_err("sys_enter"))?;
    p.load("sys_enter", &btf).map_err(load_err("sys_enter"))?;
    p.attach().map_err(load_err("attaching sys_enter"))?;
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
    /// Load and attach. The host's mount namespace (that of PID 1) is never recorded. The
    /// programs are detached when the recorder is dropped.
    pub fn load() -> Result<Self, RecorderError> {
        Self::load_inner(None)
    }

    /// Load and attach with maps and links pinned in `dir` (see [`pin_dir`]): if an earlier
    /// process left them there, its maps are taken over with everything they recorded, its
    /// programs are replaced without a gap (both run for a moment, setting the same bits),
    /// and the watched namespaces are read back from the maps. The programs stay attached
    /// when the recorder is dropped; [`Recorder::unpin`] detaches them for good.
    pub fn load_pinned(dir: &Path) -> Result<Self, RecorderError> {
        Self::load_inner(Some(dir))
    }

    /// Whether an earlier process left a pinned recorder in `dir`.
    pub fn pinned_in(dir: &Path) -> bool {
        PROGRAMS
            .iter()
            .any(|p| dir.join(format!("link-{p}")).exists())
    }

    fn load_inner(pin: Option<&Path>) -> Result<Self, RecorderError> {
        preflight()?;
        let resumed = pin.is_some_and(|d| d.join("config").exists());
        if let Some(dir) = pin {
            std::fs::create_dir_all(dir)
                .map_err(load_err(format!("creating {}", dir.display())))?;
        }
        let btf = Btf::from_sys_fs().map_err(load_err("reading the kernel's BTF"))?;
        let mut loader = EbpfLoader::new();
        loader.btf(Some(&btf));
        let paths: Vec<(&str, PathBuf)> = match pin {
            Some(dir) => PINNED_MAPS.iter().map(|m| (*m, dir.join(m))).collect(),
            None => Vec::new(),
        };
        for (name, path) in &paths {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader
            .load(OBJECT)
            .map_err(load_err("loading the object"))?;
        let mut links = Vec::new();
        for prog in PROGRAMS {
            let p: &mut BtfTracePoint = ebpf
                .program_mut(prog)
                .ok_or_else(|| load_err(prog)("program missing from the object"))?
                .try_into()
                .map_err(load_err(prog))?;
            p.load(prog, &btf).map_err(load_err(prog))?;
            let id = p.attach().map_err(load_err(format!("attaching {prog}")))?;
            if let Some(dir) = pin {
                let link: FdLink = p.take_link(id).map_err(load_err(prog))?.into();
                let path = dir.join(format!("link-{prog}"));
                // The old program stays attached until its link fd (held here) closes, after
                // the new one is pinned: no syscall goes unrecorded in between.
                let old = PinnedLink::from_pin(&path)
                    .ok()
                    .and_then(|l| l.unpin().ok());
                links.push(
                    link.pin(&path)
                        .map_err(load_err(format!("pinning {}", path.display())))?,
                );
                drop(old);
            }
        }
        // The host's namespace is PID 1's; where PID 1 is not readable (some VMs' init), the
        // namespace this process runs in (seccompctl runs on the host).
        let host_mntns = mntns_of("1")
            .or_else(|_| mntns_of("self"))
            .map_err(load_err("reading /proc/self/ns/mnt"))?;
        let mut r = Recorder {
            ebpf,
            host_mntns,
            armed: false,
            slots: Default::default(),
            hashed: Default::default(),
            ignored: Default::default(),
            ignored_order: Default::default(),
            pin_dir: pin.map(Path::to_path_buf),
            links,
            resumed,
        };
        if resumed {
            r.restore_state()?;
        }
        r.write_config()?;
        Ok(r)
    }

    /// Whether this recorder took over maps an earlier process left pinned.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Read the watched namespaces, ignored ones and the armed flag back from the maps.
    fn restore_state(&mut self) -> Result<(), RecorderError> {
        let cfg: Config = {
            let map: Array<&MapData, Config> =
                Array::try_from(self.ebpf.map("config").expect("config map"))
                    .map_err(map_err("config"))?;
            map.get(&0, 0).map_err(map_err("config"))?
        };
        self.armed = cfg.armed != 0;
        for s in cfg.slot_of.iter().filter(|s| **s != 0) {
            let slot = u32::from(*s - 1) % MAX_SLOTS as u32;
            let ns = cfg.slot_ns[slot as usize];
            if ns != 0 {
                self.slots.insert(ns, slot);
            }
        }
        let keys: Vec<u64> = self.recording()?.keys().filter_map(Result::ok).collect();
        self.hashed.extend(keys);
        for [ns, gen] in cfg.ignored.iter().filter(|e| e[0] != 0) {
            self.ignored.insert(*ns, *gen);
            self.ignored_order.push_back(*ns);
        }
        Ok(())
    }

    /// Detach the programs and remove the pins (the maps go with the last reference). For
    /// a recorder loaded with [`Recorder::load_pinned`] when nothing is left to record.
    pub fn unpin(self) -> Result<(), RecorderError> {
        let Some(dir) = self.pin_dir.clone() else {
            return Ok(());
        };
        for link in self.links {
            let _ = link.unpin();
        }
        for m in PINNED_MAPS {
            let _ = std::fs::remove_file(dir.join(m));
        }
        let _ = std::fs::remove_dir(&dir);
        Ok(())
    }

    /// The namespaces being recorded (watched).
    pub fn watched_namespaces(&self) -> Vec<u64> {
        self.slots
            .keys()
            .chain(self.hashed.iter())
            .copied()
            .collect()
    }

    /// The namespaces being recorded (watched), with what they recorded so far.
    pub fn watched(&mut self) -> Vec<(u64, NsRecord)> {
        self.watched_namespaces()
            .into_iter()
            .filter_map(|ns| self.read(ns).map(|r| (ns, r)))
            .collect()
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
            ignored: [[0; 2]; SLOT_BUCKETS as usize],
            arg_mask: [0; NR_WORDS],
            arg_nr: [-1; 8],
        };
        if Arch::native() == Arch::X86_64 {
            // The program reads x86_64's argument registers only.
            for (k, kind) in ArgKind::ALL.iter().enumerate() {
                if let Some(nr) = seccomp_filter::syscall_number(Arch::X86_64, kind.syscall()) {
                    let n = nr as usize;
                    if n < NR_WORDS * 64 {
                        cfg.arg_nr[k] = nr;
                        cfg.arg_mask[n / 64] |= 1 << (n % 64);
                    }
                }
            }
        }
        for (&ns, &gen) in &self.ignored {
            cfg.ignored[(ns % SLOT_BUCKETS) as usize] = [ns, gen];
        }
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
    /// The kernel-side record is written by userspace only once, before it is published in
    /// the config (a read-modify-write later could clear a bit the kernel sets in between):
    /// it starts with what `pending` holds. Bits a CPU still puts into `pending` after that
    /// are added on every read, until [`Recorder::take`].
    pub fn watch(&mut self, mntns: u64) -> Result<(), RecorderError> {
        if self.ignored.remove(&mntns).is_some() {
            self.ignored_order.retain(|n| *n != mntns);
        }
        if self.slots.contains_key(&mntns) || self.hashed.contains(&mntns) {
            return Ok(());
        }
        // The new record starts in the phase the namespace is in: a container found by its
        // cgroup has exec'd already, and its bits from now on are the program's.
        let start = match self.pending()?.get(&mntns, 0) {
            Ok(p) if p.flags & FLAG_IGNORED == 0 => NsRecord {
                flags: p.flags & FLAG_EXECED,
                ..p
            },
            Ok(p) => NsRecord {
                gen: p.gen,
                ..NsRecord::default()
            },
            Err(_) => NsRecord::default(),
        };
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
        self.write_config()
    }

    /// Stop recording a namespace nobody wants (armed mode). Its generation is kept, so that a
    /// new namespace that reuses the inode number is recorded again.
    pub fn ignore(&mut self, mntns: u64) -> Result<(), RecorderError> {
        let gen = self.pending()?.get(&mntns, 0).map(|r| r.gen).unwrap_or(0);
        let rec = NsRecord {
            flags: FLAG_IGNORED,
            gen,
            ..NsRecord::default()
        };
        self.pending()?
            .insert(mntns, rec, 0)
            .map_err(map_err("pending"))?;
        // Bounded like the LRU map: the oldest entries go first; a forgotten one still has
        // its IGNORED entry in `pending`.
        if self.ignored.len() >= IGNORED_MAX {
            if let Some(&oldest) = self.ignored_order.front() {
                self.ignored_order.pop_front();
                self.ignored.remove(&oldest);
            }
        }
        if self.ignored.insert(mntns, gen).is_none() {
            self.ignored_order.push_back(mntns);
        }
        self.write_config()
    }

    /// [`Recorder::ignore`] the namespace `record` (read from [`Recorder::pending_records`])
    /// belongs to, unless its inode number was reused since: a decision made about a dead
    /// namespace must not land on a new one (its IGNORED mark would wipe what the kernel
    /// recorded for it, its exec and cgroup name included, and it would never be claimed).
    /// False when the number now belongs to another namespace (nothing was changed).
    pub fn ignore_record(&mut self, mntns: u64, record: &NsRecord) -> Result<bool, RecorderError> {
        let now = self.pending()?.get(&mntns, 0).ok();
        if now.is_some_and(|r| r.gen != record.gen) {
            return Ok(false);
        }
        self.ignore(mntns)?;
        Ok(true)
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

    fn notes(&mut self) -> Result<BpfHashMap<&mut MapData, u64, Note>, RecorderError> {
        BpfHashMap::try_from(self.ebpf.map_mut("notes").expect("notes map"))
            .map_err(map_err("notes"))
    }

    /// Keep a note (at most 1020 bytes) about a watched namespace next to its record; with
    /// pinned maps it survives a restart of this process. Removed by [`Recorder::take`].
    pub fn set_note(&mut self, mntns: u64, note: &[u8]) -> Result<(), RecorderError> {
        if note.len() > NOTE_LEN {
            return Err(RecorderError::NoteTooLarge(note.len()));
        }
        let mut n = Note {
            len: note.len() as u32,
            data: [0; NOTE_LEN],
        };
        n.data[..note.len()].copy_from_slice(note);
        self.notes()?.insert(mntns, n, 0).map_err(map_err("notes"))
    }

    /// The note kept about a namespace.
    pub fn note(&mut self, mntns: u64) -> Option<Vec<u8>> {
        let n = self.notes().ok()?.get(&mntns, 0).ok()?;
        Some(n.data[..(n.len as usize).min(NOTE_LEN)].to_vec())
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
        let _ = self.notes().map(|mut m| m.remove(&mntns));
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
