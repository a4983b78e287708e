//! The cgroup sampler: the memory a container may use, and uses.

use super::{Failures, READ_LIMIT, Report, SampleError, Signal, field, parse_u64, read_small, report_to_stderr};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

/// Limits at or above this are "no limit": cgroup v1 writes an unlimited limit as the
/// largest page-aligned `i64` (9,223,372,036,854,771,712), which no machine has.
const UNLIMITED_FROM: u64 = 1 << 62;

/// Which cgroup interface a [`CgroupSampler`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// The unified hierarchy: `memory.current`, `memory.max`, `memory.peak`.
    V2,
    /// The legacy memory controller: `memory.usage_in_bytes`, `memory.limit_in_bytes`
    /// (or `hierarchical_memory_limit` in `memory.stat`), `memory.max_usage_in_bytes`.
    V1,
}

/// One reading of a cgroup; a field is `None` when its file could not be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupSample {
    /// Memory charged to the cgroup, bytes (page cache included, as the kernel counts it
    /// against the limit).
    pub usage_bytes: Option<u64>,
    /// The effective limit, bytes: the smallest limit of the cgroup and its ancestors.
    /// `None` when there is none, or it could not be read.
    pub limit_bytes: Option<u64>,
    /// The most the cgroup has used, bytes (v2 `memory.peak` needs Linux 5.19).
    pub peak_bytes: Option<u64>,
}

/// Reads the memory usage and the effective limit of a cgroup: what a container may use
/// before the kernel's out-of-memory killer steps in.
///
/// [`discover`](Self::discover) finds the calling process's cgroup from
/// `/proc/self/cgroup` and `/proc/self/mountinfo` ([`discover_for`](Self::discover_for)
/// another process's, from `/proc/PID/cgroup`): the v2 (unified) cgroup if it has a
/// memory controller, else the v1 memory controller's. The limit is the smallest of the
/// cgroup's and its ancestors' (v2 walks up to the mount's root; v1 reads the kernel's
/// `hierarchical_memory_limit`), because any of them can trigger the out-of-memory killer.
#[derive(Debug)]
pub struct CgroupSampler {
    version: CgroupVersion,
    dir: PathBuf,
    // Every path is built once here, so a sample joins no path (and allocates nothing).
    usage: PathBuf,
    peak: PathBuf,
    /// v2: `memory.max` of the cgroup and of each ancestor up to the mount point;
    /// v1: `memory.limit_in_bytes`.
    limits: Vec<PathBuf>,
    /// v1 only: `memory.stat`, for `hierarchical_memory_limit`.
    stat: Option<PathBuf>,
    failures: Failures,
}

impl CgroupSampler {
    /// The calling process's memory cgroup, reporting to stderr; an error if there is none
    /// (not Linux, cgroups not mounted, or no memory controller).
    pub fn discover() -> Result<Self, SampleError> {
        Self::discover_from("/proc/self/cgroup", "this process")
    }

    /// The memory cgroup of process `pid`, reporting to stderr; an error if there is none
    /// or the process does not exist. Its cgroup is read from `/proc/PID/cgroup`, and
    /// located among the mounts of the calling process (`/proc/self/mountinfo`), where
    /// its files must be read from: a process in another mount namespace (a container seen
    /// from the host) is found if the host mounts its cgroup.
    pub fn discover_for(pid: u32) -> Result<Self, SampleError> {
        Self::discover_from(&format!("/proc/{pid}/cgroup"), &format!("process {pid}"))
    }

    /// Discovery from the cgroup membership file `membership`, of `whose` process.
    fn discover_from(membership: &str, whose: &str) -> Result<Self, SampleError> {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map_err(|e| SampleError::NoCgroup { detail: format!("cannot read {path}: {e}") })
        };
        let (membership, mounts) = (read(membership)?, read("/proc/self/mountinfo")?);
        locate(&membership, &mounts).map(|(version, dir)| Self::at(version, dir, report_to_stderr)).ok_or_else(|| {
            SampleError::NoCgroup {
                detail: format!(
                    "neither a cgroup v2 with memory.current nor a v1 memory controller is mounted for {whose}"
                ),
            }
        })
    }

    /// The cgroup in `dir`, read as `version`, reporting first failures through `report`.
    /// For v2, the limits of the ancestors of `dir` are read too, up to the first that has
    /// no `memory.max` (the root cgroup has none).
    pub fn at(version: CgroupVersion, dir: impl Into<PathBuf>, report: Report) -> Self {
        let dir = dir.into();
        let (usage, peak, limits, stat) = match version {
            CgroupVersion::V2 => {
                let limits = std::iter::once(dir.as_path())
                    .chain(dir.ancestors().skip(1).take_while(|d| d.join("memory.max").exists()))
                    .map(|d| d.join("memory.max"))
                    .collect();
                (dir.join("memory.current"), dir.join("memory.peak"), limits, None)
            }
            CgroupVersion::V1 => (
                dir.join("memory.usage_in_bytes"),
                dir.join("memory.max_usage_in_bytes"),
                vec![dir.join("memory.limit_in_bytes")],
                Some(dir.join("memory.stat")),
            ),
        };
        Self { version, dir, usage, peak, limits, stat, failures: Failures::new(report) }
    }

    /// The interface read.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The cgroup's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the cgroup now.
    pub fn sample(&self) -> CgroupSample {
        CgroupSample {
            usage_bytes: self.failures.keep(read_u64(&self.usage, Signal::CgroupUsage)),
            limit_bytes: self.failures.keep(self.limit()).flatten(),
            peak_bytes: self.failures.keep(read_u64(&self.peak, Signal::CgroupPeak)),
        }
    }

    /// Failures so far (each signal that could not be read counts once per sample).
    pub fn failures(&self) -> u64 {
        self.failures.count.load(Relaxed)
    }

    /// The effective limit; `Ok(None)` if unlimited.
    fn limit(&self) -> Result<Option<u64>, SampleError> {
        let signal = Signal::CgroupLimit;
        let mut buf = [0u8; READ_LIMIT];
        let hierarchical = self
            .stat
            .as_ref()
            .and_then(|stat| read_small(stat, signal, &mut buf).ok())
            .and_then(|text| field(text, "hierarchical_memory_limit"));
        let limit = match hierarchical {
            Some(limit) => limit,
            None => {
                let mut smallest = u64::MAX;
                for path in &self.limits {
                    let text = read_small(path, signal, &mut buf)?;
                    let limit = match text.trim_ascii() {
                        b"max" => u64::MAX,
                        text => parse_u64(text).ok_or_else(|| SampleError::Format { signal, path: path.clone() })?,
                    };
                    smallest = smallest.min(limit);
                }
                smallest
            }
        };
        Ok((limit < UNLIMITED_FROM).then_some(limit))
    }
}

fn read_u64(path: &Path, signal: Signal) -> Result<u64, SampleError> {
    let mut buf = [0u8; READ_LIMIT];
    let text = read_small(path, signal, &mut buf)?;
    parse_u64(text).ok_or_else(|| SampleError::Format { signal, path: path.to_owned() })
}

/// The memory cgroup's interface and directory, from the contents of `/proc/PID/cgroup`
/// and `/proc/PID/mountinfo`.
fn locate(membership: &str, mounts: &str) -> Option<(CgroupVersion, PathBuf)> {
    let v2 = membership.lines().find_map(|line| line.strip_prefix("0::")).and_then(|path| {
        let dir = mounted_dir(mounts, path, |fs_type, _| fs_type == "cgroup2")?;
        dir.join("memory.current").exists().then_some((CgroupVersion::V2, dir))
    });
    v2.or_else(|| {
        let path = membership.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            controllers.split(',').any(|c| c == "memory").then_some(path)
        })?;
        let dir = mounted_dir(mounts, path, |fs_type, options| {
            fs_type == "cgroup" && options.split(',').any(|o| o == "memory")
        })?;
        dir.join("memory.usage_in_bytes").exists().then_some((CgroupVersion::V1, dir))
    })
}

/// Where cgroup `path` is in the file system: under the mount point of the first mount
/// that `wanted(fs_type, super_options)` picks and whose root contains `path`.
fn mounted_dir(mounts: &str, path: &str, wanted: impl Fn(&str, &str) -> bool) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        // `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FS_TYPE SOURCE SUPER_OPTIONS`
        let (before, after) = line.split_once(" - ")?;
        let mut before = before.split(' ');
        let root = before.nth(3)?;
        let mount_point = before.next()?;
        let mut after = after.split(' ');
        let (fs_type, _source, options) = (after.next()?, after.next()?, after.next().unwrap_or(""));
        if !wanted(fs_type, options) {
            return None;
        }
        let relative = if root == "/" { path } else { path.strip_prefix(root)? };
        Some(Path::new(mount_point).join(relative.trim_start_matches('/')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_process_cgroup_is_read_where_there_is_one() {
        let sampler = match CgroupSampler::discover() {
            Ok(sampler) => sampler,
            Err(e) => {
                // Not every Linux machine mounts a memory controller (and non-Linux has none).
                assert!(
                    !Path::new("/sys/fs/cgroup/memory.current").exists(),
                    "a memory.current exists yet discovery failed: {e}"
                );
                eprintln!("skipped: {e}");
                return;
            }
        };
        let sample = sampler.sample();
        let usage = sample.usage_bytes.expect("the usage of the discovered cgroup");
        let rss = super::super::ProcessSampler::current().sample().rss_bytes.unwrap();
        // The cgroup is charged at least this process's anonymous memory, so its usage is
        // far above nothing; page cache and other processes only add.
        assert!(usage > rss / 4, "cgroup usage {usage} is implausibly low for a process of RSS {rss}");
        if let Some(limit) = sample.limit_bytes {
            assert!(limit >= usage / 2, "a limit {limit} far below the usage {usage} would have killed us");
        }
        assert_eq!(sampler.failures(), u64::from(sample.peak_bytes.is_none()), "only peak may be missing");
    }

    #[test]
    fn another_process_is_found_in_its_cgroup() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().expect("sleep runs");
        let (own, child_cgroup) = (CgroupSampler::discover(), CgroupSampler::discover_for(child.id()));
        child.kill().ok();
        child.wait().ok();
        match (own, child_cgroup) {
            // A child starts in its parent's cgroup.
            (Ok(own), Ok(child)) => assert_eq!((own.version(), own.dir()), (child.version(), child.dir())),
            (Err(own), Err(child)) => eprintln!("skipped: {own}; {child}"),
            (own, child) => panic!("this process and its child disagree: {own:?} versus {child:?}"),
        }
        let gone = CgroupSampler::discover_for(child.id()).expect_err("a reaped process has no cgroup");
        let message = gone.to_string();
        assert!(message.contains(&format!("cannot read /proc/{}/cgroup", child.id())), "{message}");
    }

    #[test]
    fn v2_and_v1_are_located_from_proc_files() {
        let dir = std::env::temp_dir().join(format!("plimsoll-cgroup-locate-{}", std::process::id()));
        let v2 = dir.join("unified/app");
        // The v1 mount's root is `/docker`, so cgroup `/docker/abc` is `abc` under it, as
        // inside a container.
        let v1 = dir.join("memory/abc");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("memory.usage_in_bytes"), "1\n").unwrap();
        let mounts = format!(
            "31 23 0:28 / {d}/unified rw - cgroup2 cgroup2 rw\n\
             35 31 0:32 /docker {d}/memory rw,relatime - cgroup cgroup rw,memory\n",
            d = dir.display()
        );
        let membership = "4:memory:/docker/abc\n0::/app\n";
        // The v2 cgroup has no memory controller (no memory.current): v1 is used.
        assert_eq!(locate(membership, &mounts), Some((CgroupVersion::V1, v1.clone())));
        std::fs::write(v2.join("memory.current"), "1\n").unwrap();
        assert_eq!(locate(membership, &mounts), Some((CgroupVersion::V2, v2.clone())));
        assert_eq!(locate("0::/elsewhere\n", &mounts), None);
        assert_eq!(locate("", ""), None);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn v2_limit_is_the_smallest_of_the_ancestors() {
        let root = std::env::temp_dir().join(format!("plimsoll-cgroup-v2-{}", std::process::id()));
        let leaf = root.join("parent/leaf");
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::write(root.join("parent/memory.max"), "536870912\n").unwrap();
        std::fs::write(leaf.join("memory.max"), "max\n").unwrap();
        std::fs::write(leaf.join("memory.current"), "104857600\n").unwrap();
        std::fs::write(leaf.join("memory.peak"), "209715200\n").unwrap();
        let sampler = CgroupSampler::at(CgroupVersion::V2, &leaf, |_| {});
        let sample = sampler.sample();
        assert_eq!(
            sample,
            CgroupSample { usage_bytes: Some(100 << 20), limit_bytes: Some(512 << 20), peak_bytes: Some(200 << 20) }
        );
        std::fs::write(root.join("parent/memory.max"), "max\n").unwrap();
        assert_eq!(sampler.sample().limit_bytes, None, "max everywhere is no limit");
        std::fs::write(leaf.join("memory.max"), "lots\n").unwrap();
        assert_eq!(sampler.sample().limit_bytes, None);
        assert_eq!(sampler.failures(), 1, "a malformed limit is a counted failure");
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn v1_reads_the_hierarchical_limit_and_treats_huge_as_unlimited() {
        let dir = std::env::temp_dir().join(format!("plimsoll-cgroup-v1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.usage_in_bytes"), "1000\n").unwrap();
        std::fs::write(dir.join("memory.max_usage_in_bytes"), "2000\n").unwrap();
        std::fs::write(dir.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        let sampler = CgroupSampler::at(CgroupVersion::V1, &dir, |_| {});
        assert_eq!(
            sampler.sample(),
            CgroupSample { usage_bytes: Some(1000), limit_bytes: None, peak_bytes: Some(2000) }
        );
        std::fs::write(dir.join("memory.stat"), "cache 0\nhierarchical_memory_limit 268435456\n").unwrap();
        assert_eq!(sampler.sample().limit_bytes, Some(256 << 20));
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(sampler.sample(), CgroupSample::default(), "a cgroup that vanished reads as nothing");
        assert_eq!(sampler.failures(), 3);
    }
}
