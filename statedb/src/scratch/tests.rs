use super::Scratch;
use crate::key::Key;

#[test]
fn buffers_come_back_empty_with_their_room() {
    let mut s = Scratch::take();
    s.keys.push(Key::from_bytes(b"k"));
    s.bytes.extend_from_slice(&[1; 100]);
    drop(s);
    let again = Scratch::take();
    assert!(again.keys.is_empty() && again.bytes.is_empty());
    assert!(again.bytes.capacity() >= 100, "the buffer was reused");
}

/// The pool is dropped at thread exit while buffers are pooled; that must not touch the pool
/// being dropped.
#[test]
fn a_thread_exits_cleanly_with_pooled_buffers() {
    std::thread::spawn(|| {
        let outer = Scratch::take();
        let inner = Scratch::take();
        drop(inner);
        drop(outer);
    })
    .join()
    .expect("thread exits cleanly");
}
