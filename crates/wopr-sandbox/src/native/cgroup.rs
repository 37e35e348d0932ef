//! Control groups for the limits rlimits cannot express: total memory and CPU share of the whole process
//! tree, and a process count that binds whatever the uid. Used when this process may create cgroups
//! (usually as root): cgroup v1 controllers (`pids`, `memory`, `cpu`) or a cgroup v2 hierarchy whose
//! subtree delegates `pids` and `memory`. Each run gets its own group below ours, removed afterwards.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::policy::Limits;

/// Where this host lets us create per-run groups.
#[derive(Debug, Clone)]
pub(crate) enum Layout {
    /// One directory per v1 controller (our own group in each).
    V1 { pids: PathBuf, memory: PathBuf, cpu: Option<PathBuf> },
    /// Our own group in the unified hierarchy.
    V2 { base: PathBuf, cpu: bool },
}

impl Layout {
    /// Finds a layout we can write to, by creating and removing a probe group.
    pub(crate) fn detect() -> Option<Layout> {
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
        let layout = v1(&own, &mounts).or_else(|| v2(&own, &mounts))?;
        let probe = layout.create(&format!("wopr-sandbox-probe-{}", std::process::id()), None).ok()?;
        probe.remove();
        Some(layout)
    }

    /// Human-readable description, for the doctor.
    pub(crate) fn describe(&self) -> String {
        match self {
            Layout::V1 { pids, cpu, .. } => format!(
                "cgroup v1 ({}{})",
                pids.parent().map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
                if cpu.is_some() { ", cpu quota" } else { ", no cpu controller" }
            ),
            Layout::V2 { base, cpu } => {
                format!("cgroup v2 ({}{})", base.display(), if *cpu { ", cpu quota" } else { "" })
            }
        }
    }

    fn create(&self, name: &str, limits: Option<&Limits>) -> std::io::Result<Group> {
        let mut group = Group { dirs: Vec::new() };
        let mk = |dir: PathBuf, group: &mut Group| -> std::io::Result<PathBuf> {
            fs::create_dir(&dir)?;
            group.dirs.push(dir.clone());
            Ok(dir)
        };
        match self {
            Layout::V1 { pids, memory, cpu } => {
                let p = mk(pids.join(name), &mut group)?;
                let m = mk(memory.join(name), &mut group)?;
                let c = cpu.as_ref().map(|c| mk(c.join(name), &mut group)).transpose()?;
                if let Some(l) = limits {
                    fs::write(p.join("pids.max"), l.pids.to_string())?;
                    fs::write(m.join("memory.limit_in_bytes"), l.memory_bytes.to_string())?;
                    // Without swap accounting this file is absent; the limit above still holds.
                    let _ = fs::write(m.join("memory.memsw.limit_in_bytes"), l.memory_bytes.to_string());
                    if let Some(c) = c {
                        fs::write(c.join("cpu.cfs_period_us"), "100000")?;
                        fs::write(c.join("cpu.cfs_quota_us"), quota(l.cpus).to_string())?;
                    }
                }
            }
            Layout::V2 { base, cpu } => {
                let g = mk(base.join(name), &mut group)?;
                if let Some(l) = limits {
                    fs::write(g.join("pids.max"), l.pids.to_string())?;
                    fs::write(g.join("memory.max"), l.memory_bytes.to_string())?;
                    let _ = fs::write(g.join("memory.swap.max"), "0");
                    if *cpu {
                        fs::write(g.join("cpu.max"), format!("{} 100000", quota(l.cpus)))?;
                    }
                }
            }
        }
        Ok(group)
    }
}

/// A per-run group, with limits set, that a process can be moved into.
pub(crate) struct Group {
    dirs: Vec<PathBuf>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Creates a fresh group with `limits`.
pub(crate) fn create(layout: &Layout, limits: &Limits) -> std::io::Result<Group> {
    let name = format!("wopr-sandbox-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    layout.create(&name, Some(limits))
}

impl Group {
    /// Moves `pid` into every controller of the group.
    pub(crate) fn add(&self, pid: i32) -> std::io::Result<()> {
        for dir in &self.dirs {
            fs::write(dir.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }

    /// Removes the group, waiting briefly for the killed processes to leave it.
    pub(crate) fn remove(self) {
        let until = Instant::now() + Duration::from_secs(2);
        for dir in self.dirs.iter().rev() {
            while fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

fn quota(cpus: f64) -> u64 {
    ((cpus * 100_000.0) as u64).max(1000)
}

/// Our group's directory for each v1 controller we need.
fn v1(own: &str, mounts: &str) -> Option<Layout> {
    let dir = |controller: &str| -> Option<PathBuf> {
        let rel = own.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls.split(',').any(|c| c == controller).then(|| path.trim_start_matches('/').to_string())
        })?;
        let mount = mounts.lines().find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mut post = post.split(' ');
            let (fstype, _, opts) = (post.next()?, post.next()?, post.next()?);
            let mount_point = pre.split(' ').nth(4)?;
            (fstype == "cgroup" && opts.split(',').any(|o| o == controller))
                .then(|| PathBuf::from(mount_point))
        })?;
        Some(mount.join(rel))
    };
    Some(Layout::V1 { pids: dir("pids")?, memory: dir("memory")?, cpu: dir("cpu") })
}

/// Our group in the unified hierarchy, if it delegates `pids` and `memory` to children.
fn v2(own: &str, mounts: &str) -> Option<Layout> {
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?.trim_start_matches('/');
    let mount = mounts.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split(' ').next()? == "cgroup2" { pre.split(' ').nth(4).map(PathBuf::from) } else { None }
    })?;
    let base = mount.join(rel);
    let delegated = fs::read_to_string(base.join("cgroup.subtree_control")).ok()?;
    let has = |c: &str| delegated.split_whitespace().any(|d| d == c);
    (has("pids") && has("memory")).then(|| Layout::V2 { cpu: has("cpu"), base })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_controllers_are_found_below_their_mount_points() {
        let own = "9:name=systemd:/\n8:pids:/\n4:memory:/api/x\n1:cpu,cpuacct:/\n0::/\n";
        let mounts = "30 25 0:26 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n\
                      31 25 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                      32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let Some(Layout::V1 { pids, memory, cpu }) = v1(own, mounts) else { panic!("no v1 layout") };
        assert_eq!(pids, Path::new("/sys/fs/cgroup/pids"));
        assert_eq!(memory, Path::new("/sys/fs/cgroup/memory/api/x"));
        assert_eq!(cpu.unwrap(), Path::new("/sys/fs/cgroup/cpu,cpuacct"));
    }
}
