//! How much of the current thread's stack is left, so that recursion can stop with an error
//! before it overflows the stack (which would abort the process).
//!
//! jq definitions can recurse as deep as their input asks (`def f: if . == 0 then 0 else
//! (. - 1 | f) + 1 end`), and jaq evaluates them on the native stack. Every recursive
//! definition an expression can reach calls [`check`] on entry (see `expr.rs`), which fails once
//! less than [`RESERVE`] bytes are left. The bounds come from the thread itself
//! (`pthread_getattr_np`), once per thread; where they are unknown (other than Linux) the check
//! always passes.

use std::cell::Cell;

/// Stack kept free below the deepest recursion: room for what one level between two checks,
/// and the unwinding after the error, can need.
pub(crate) const RESERVE: usize = 512 * 1024;

thread_local! {
    /// The lowest usable address of this thread's stack; 0 before it is known, 1 if unknown.
    static LOW: Cell<usize> = const { Cell::new(0) };
}

/// Bytes of stack left below the caller's frame, if the bounds are known.
pub(crate) fn remaining() -> Option<usize> {
    let marker = 0u8;
    let here = std::ptr::addr_of!(marker) as usize;
    let low = LOW.with(|low| {
        if low.get() == 0 {
            low.set(lowest_address().unwrap_or(1));
        }
        low.get()
    });
    (low > 1).then(|| here.saturating_sub(low))
}

/// Whether at least [`RESERVE`] bytes of stack are left (always, where that is unknown).
pub(crate) fn check() -> bool {
    remaining().is_none_or(|left| left >= RESERVE)
}

#[cfg(target_os = "linux")]
fn lowest_address() -> Option<usize> {
    // SAFETY: `attr` is initialised by pthread_getattr_np before it is read, and destroyed
    // once; the calls only read the calling thread's attributes.
    unsafe {
        let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let mut attr = attr.assume_init();
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        // The guard page(s) sit at the low end of the reported range on some libcs: one more
        // page of margin.
        (ok && !addr.is_null()).then(|| addr as usize + 4096)
    }
}

#[cfg(not(target_os = "linux"))]
fn lowest_address() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounds_are_known_and_shrink_with_depth() {
        #[cfg(target_os = "linux")]
        {
            let top = remaining().expect("Linux threads know their stack");
            fn deeper(n: usize) -> usize {
                let pad = [0u8; 1024];
                std::hint::black_box(&pad);
                if n == 0 {
                    remaining().unwrap()
                } else {
                    deeper(n - 1)
                }
            }
            assert!(deeper(64) + 64 * 1024 <= top);
            assert!(check());
            // A thread of a known size reports at least about that size (glibc may hand it a
            // cached stack of up to four times the size asked for).
            let size = 4 * 1024 * 1024;
            let left = std::thread::Builder::new()
                .stack_size(size)
                .spawn(|| remaining().unwrap())
                .unwrap()
                .join()
                .unwrap();
            assert!(left <= 4 * size && left > size / 2, "{left}");
        }
    }
}
