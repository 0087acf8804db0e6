//! Tokens created and opened from many threads of one process at once.
//!
//! SoftHSM2 rebuilds its slot table on every `C_GetSlotList`; two threads
//! doing that at once, or one doing it while another creates a token, can
//! insert a token twice and abort the process in `SlotManager::insertToken`.
//! hsm-bridge serialises its slot listings and token creation within the
//! process; this test hammers both from several threads. It is a binary of its
//! own because a failure is an abort, which would take other tests with it.

mod common;

use std::sync::Arc;
use std::sync::Barrier;

use common::*;
use hsm_bridge::{Token, token_exists};

/// Threads at once, and tokens each creates.
const THREADS: usize = 8;
const TOKENS_PER_THREAD: usize = 12;
/// Slot listings after each token, while other threads create theirs.
const LISTINGS_PER_TOKEN: usize = 20;

#[test]
fn tokens_created_and_opened_from_many_threads_at_once() {
    setup();
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                for i in 0..TOKENS_PER_THREAD {
                    let cfg = new_token(&format!("c{t}-{i}"));
                    let token = Token::open(&cfg).unwrap();
                    token.session().unwrap().create_kek("kek").unwrap();
                    let other = format!("t-c{}-{i}", (t + 1) % THREADS);
                    // Whether or not the other thread has made it yet, the
                    // listing must answer, not abort.
                    for _ in 0..LISTINGS_PER_TOKEN {
                        token_exists(std::path::Path::new(MODULE), &other).unwrap();
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    for t in 0..THREADS {
        for i in 0..TOKENS_PER_THREAD {
            let label = format!("t-c{t}-{i}");
            assert!(
                token_exists(std::path::Path::new(MODULE), &label).unwrap(),
                "{label}"
            );
        }
    }
}
