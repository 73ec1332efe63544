//! BPF_PROG_TEST_RUN, which aya 0.14 has no API for: one raw `bpf(2)` call.

use std::os::fd::{AsFd as _, AsRawFd as _};

use aya::programs::SchedClassifier;

use crate::Error;

const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// The size of `struct __sk_buff` and the offset of its `mark` (uapi linux/bpf.h): the kernel
/// writes the skb's fields back there after the run.
const SK_BUFF_SIZE: usize = 192;
const SK_BUFF_MARK: usize = 8;

/// The `test` member of `union bpf_attr`, up to `batch_size` (kernel 5.18+ layout).
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    pad: u32,
}

/// What one test run returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRun {
    /// The program's return value: 0 `TC_ACT_OK`, 2 `TC_ACT_SHOT`, 7 `TC_ACT_REDIRECT`.
    pub verdict: u32,
    /// The packet as the program left it.
    pub packet: Vec<u8>,
    /// The skb mark as the program left it.
    pub mark: u32,
    /// Average run time per repetition as the kernel measured it, in nanoseconds.
    pub duration_ns: u32,
}

impl TestRun {
    pub const TC_ACT_OK: u32 = 0;
    /// The packet goes to another device (`bpf_redirect_peer`: into a local pod).
    pub const TC_ACT_REDIRECT: u32 = 7;
    pub const TC_ACT_SHOT: u32 = 2;
}

pub(super) fn run(
    prog: &SchedClassifier,
    name: &'static str,
    packet: &[u8],
    repeat: u32,
    mark: u32,
) -> Result<TestRun, Error> {
    let test_error = |source| Error::TestRun {
        program: name,
        source,
    };
    let fd = prog
        .fd()
        .map_err(|source| Error::Program {
            program: name,
            source: Box::new(source),
        })?
        .as_fd()
        .as_raw_fd();
    let mut out = vec![0u8; packet.len() + 256];
    let mut ctx_out = [0u8; SK_BUFF_SIZE];
    // The kernel takes only a few `__sk_buff` fields from the caller; the mark is one.
    let mut ctx_in = [0u8; SK_BUFF_SIZE];
    ctx_in[SK_BUFF_MARK..SK_BUFF_MARK + 4].copy_from_slice(&mark.to_ne_bytes());
    let len = |n: usize| {
        u32::try_from(n).map_err(|_| test_error(std::io::Error::other("packet too large")))
    };
    let mut attr = TestRunAttr {
        prog_fd: u32::try_from(fd).map_err(|_| test_error(std::io::Error::other("negative fd")))?,
        data_size_in: len(packet.len())?,
        data_size_out: len(out.len())?,
        data_in: packet.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat: repeat.max(1),
        ctx_size_in: len(ctx_in.len())?,
        ctx_in: ctx_in.as_ptr() as u64,
        ctx_size_out: len(ctx_out.len())?,
        ctx_out: ctx_out.as_mut_ptr() as u64,
        ..TestRunAttr::default()
    };
    #[expect(
        unsafe_code,
        reason = "the bpf(2) syscall has no safe wrapper for test runs"
    )]
    // SAFETY: `attr` is a valid `bpf_attr.test` for the size passed; data_in points to
    // `packet.len()` readable bytes, ctx_in to `ctx_in.len()`, data_out to `out.len()` and ctx_out to `ctx_out.len()`
    // writable bytes, all alive for the call; the kernel writes only within `attr`, `out` and
    // `ctx_out`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &raw mut attr,
            size_of::<TestRunAttr>(),
        )
    };
    if ret < 0 {
        return Err(test_error(std::io::Error::last_os_error()));
    }
    out.truncate(
        usize::try_from(attr.data_size_out)
            .unwrap_or(0)
            .min(out.len()),
    );
    let mark = &ctx_out[SK_BUFF_MARK..SK_BUFF_MARK + 4];
    Ok(TestRun {
        verdict: attr.retval,
        packet: out,
        mark: u32::from_ne_bytes([mark[0], mark[1], mark[2], mark[3]]),
        duration_ns: attr.duration,
    })
}
