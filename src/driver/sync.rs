//! Small single-threaded async tools built on std alone: a race of two futures, a FIFO
//! lock, and an abort signal. The driver runs on one thread (the page's), so these use
//! `Rc`/`RefCell` and are neither `Send` nor `Sync`.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Which of two raced futures finished first.
#[derive(Debug)]
pub enum Either<A, B> {
    /// The first.
    Left(A),
    /// The second.
    Right(B),
}

/// Polls `a` then `b`; resolves with the first that is ready. The other is dropped by the
/// caller, or kept when it was passed by `&mut` (as the driver does with bulk-IN reads).
pub fn race<A, B>(a: A, b: B) -> Race<A, B>
where
    A: Future + Unpin,
    B: Future + Unpin,
{
    Race { a, b }
}

/// The future returned by [`race`].
#[derive(Debug)]
pub struct Race<A, B> {
    a: A,
    b: B,
}

impl<A, B> Future for Race<A, B>
where
    A: Future + Unpin,
    B: Future + Unpin,
{
    type Output = Either<A::Output, B::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(v) = Pin::new(&mut self.a).poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = Pin::new(&mut self.b).poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    }
}

/// The waiters in arrival order: a `Vec`, not a `VecDeque` (removing the first of the few
/// calls a page queues on one reader costs nothing; its code is smaller, issue 18).
#[derive(Debug, Default)]
struct LockState {
    locked: bool,
    waiters: Vec<(u64, Option<Waker>)>,
    next_ticket: u64,
}

/// A first-come first-served async lock: operations on one reader run one after another.
#[derive(Debug, Clone, Default)]
pub struct FifoLock {
    state: Rc<RefCell<LockState>>,
}

impl FifoLock {
    /// Waits for the lock. The returned guard releases it on drop, also when the waiting
    /// future is dropped first.
    pub fn lock(&self) -> LockFuture {
        let mut s = self.state.borrow_mut();
        let ticket = s.next_ticket;
        s.next_ticket = s.next_ticket.wrapping_add(1);
        s.waiters.push((ticket, None));
        LockFuture {
            state: Rc::clone(&self.state),
            ticket,
            done: false,
        }
    }

    /// Whether someone holds the lock.
    pub fn is_locked(&self) -> bool {
        self.state.borrow().locked
    }
}

/// The future returned by [`FifoLock::lock`].
#[derive(Debug)]
pub struct LockFuture {
    state: Rc<RefCell<LockState>>,
    ticket: u64,
    done: bool,
}

impl Future for LockFuture {
    type Output = LockGuard;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LockGuard> {
        let ticket = self.ticket;
        let mut s = self.state.borrow_mut();
        let first = s.waiters.first().map(|w| w.0) == Some(ticket);
        if first && !s.locked {
            s.locked = true;
            s.waiters.remove(0);
            drop(s);
            self.done = true;
            return Poll::Ready(LockGuard {
                state: Rc::clone(&self.state),
            });
        }
        if let Some(w) = s.waiters.iter_mut().find(|w| w.0 == ticket) {
            w.1 = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for LockFuture {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut s = self.state.borrow_mut();
        let ticket = self.ticket;
        if let Some(at) = s.waiters.iter().position(|w| w.0 == ticket) {
            s.waiters.remove(at);
        }
        if !s.locked {
            if let Some((_, Some(w))) = s.waiters.first() {
                w.wake_by_ref();
            }
        }
    }
}

/// Holds the lock of a [`FifoLock`] until dropped.
#[derive(Debug)]
pub struct LockGuard {
    state: Rc<RefCell<LockState>>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let mut s = self.state.borrow_mut();
        s.locked = false;
        if let Some((_, Some(w))) = s.waiters.first() {
            w.wake_by_ref();
        }
    }
}

#[derive(Debug, Default)]
struct AbortState {
    aborted: bool,
    wakers: Vec<Waker>,
}

/// A one-shot abort signal (the Rust side of an `AbortSignal`).
#[derive(Debug, Clone, Default)]
pub struct Abort {
    state: Rc<RefCell<AbortState>>,
}

impl Abort {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the signal; every waiter wakes.
    pub fn abort(&self) {
        let wakers = {
            let mut s = self.state.borrow_mut();
            s.aborted = true;
            std::mem::take(&mut s.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Whether the signal fired.
    pub fn is_aborted(&self) -> bool {
        self.state.borrow().aborted
    }

    /// Resolves when the signal fires.
    pub fn wait(&self) -> AbortFuture {
        AbortFuture {
            state: Rc::clone(&self.state),
        }
    }
}

/// The future returned by [`Abort::wait`].
#[derive(Debug)]
pub struct AbortFuture {
    state: Rc<RefCell<AbortState>>,
}

impl Future for AbortFuture {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.state.borrow_mut();
        if s.aborted {
            Poll::Ready(())
        } else {
            // One waker per task: the update loop makes a new wait for every POST and
            // sleep of a session, each polled a few times, all from the same task.
            if !s.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                s.wakers.push(cx.waker().clone());
            }
            Poll::Pending
        }
    }
}

/// A future that never resolves (an absent abort signal).
#[derive(Debug, Default)]
pub struct Never;

impl Future for Never {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;
    use std::task::Wake;

    /// A waker that records being woken (`Wake` needs `Send + Sync`, hence the atomic).
    struct Woken(std::sync::atomic::AtomicBool);
    impl Wake for Woken {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn poll_once<F: Future + Unpin>(f: &mut F) -> (Poll<F::Output>, std::sync::Arc<Woken>) {
        let flag = std::sync::Arc::new(Woken(std::sync::atomic::AtomicBool::new(false)));
        let waker = Waker::from(std::sync::Arc::clone(&flag));
        let mut cx = Context::from_waker(&waker);
        (Pin::new(f).poll(&mut cx), flag)
    }

    #[test]
    fn lock_is_fifo_and_survives_dropped_waiters() {
        let lock = FifoLock::default();
        let mut a = lock.lock();
        let mut b = lock.lock();
        let mut c = lock.lock();
        let (ga, _) = poll_once(&mut a);
        let Poll::Ready(ga) = ga else {
            panic!("first waiter gets the lock")
        };
        assert!(lock.is_locked());
        let (pb, wb) = poll_once(&mut b);
        assert!(pb.is_pending());
        let (pc, _) = poll_once(&mut c);
        assert!(pc.is_pending());
        drop(ga);
        assert!(
            wb.0.load(std::sync::atomic::Ordering::SeqCst),
            "next waiter woken"
        );
        // b gives up: c must get the lock.
        drop(b);
        let (pc, _) = poll_once(&mut c);
        assert!(matches!(pc, Poll::Ready(_)));
    }

    /// A waiter that gives up in the middle of the queue leaves the others their order.
    #[test]
    fn lock_keeps_order_when_a_middle_waiter_leaves() {
        let lock = FifoLock::default();
        let mut a = lock.lock();
        let (ga, _) = poll_once(&mut a);
        let Poll::Ready(ga) = ga else {
            panic!("first waiter gets the lock")
        };
        let (mut b, mut c, mut d) = (lock.lock(), lock.lock(), lock.lock());
        assert!(poll_once(&mut b).0.is_pending());
        assert!(poll_once(&mut c).0.is_pending());
        assert!(poll_once(&mut d).0.is_pending());
        drop(c);
        drop(ga);
        assert!(poll_once(&mut d).0.is_pending(), "b is first");
        let (gb, _) = poll_once(&mut b);
        let Poll::Ready(gb) = gb else {
            panic!("b gets the lock after a")
        };
        let (_, wd) = poll_once(&mut d);
        drop(gb);
        assert!(wd.0.load(std::sync::atomic::Ordering::SeqCst), "d is woken");
        assert!(matches!(poll_once(&mut d).0, Poll::Ready(_)), "d is next");
    }

    #[test]
    fn abort_wakes_waiters() {
        let abort = Abort::new();
        let mut w = abort.wait();
        let (p, flag) = poll_once(&mut w);
        assert!(p.is_pending());
        abort.abort();
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
        let (p, _) = poll_once(&mut w);
        assert!(p.is_ready());
        assert!(abort.is_aborted());
    }

    #[test]
    fn race_prefers_the_first_ready() {
        let mut r = race(Never, std::future::ready(7));
        let (p, _) = poll_once(&mut r);
        assert!(matches!(p, Poll::Ready(Either::Right(7))));
    }

    #[test]
    fn abort_waits_of_one_task_keep_one_waker() {
        // A session makes a new wait per POST and sleep, each polled several times, all
        // from one task: the signal keeps one waker for it, not one per poll.
        let abort = Abort::new();
        let flag = std::sync::Arc::new(Woken(std::sync::atomic::AtomicBool::new(false)));
        let waker = Waker::from(std::sync::Arc::clone(&flag));
        for _ in 0..1000 {
            let mut wait = abort.wait();
            for _ in 0..3 {
                let polled = Pin::new(&mut wait).poll(&mut Context::from_waker(&waker));
                assert!(polled.is_pending());
            }
        }
        assert_eq!(abort.state.borrow().wakers.len(), 1);
        abort.abort();
        assert!(
            flag.0.load(std::sync::atomic::Ordering::SeqCst),
            "the task is woken"
        );
    }
}
