//! Fuzz target: the whole way in. Each input is received (`List::receive`)
//! by the same list, made once per process (`conclave_fuzz::Home`) and
//! copied afresh for every input, at a fixed time. A post may be refused,
//! held or distributed; what must never happen is a panic or an error that
//! is the post's fault.

use conclave_fuzz::Home;

fn main() {
    let home = Home::new();
    afl::fuzz_nohook!(|data: &[u8]| {
        let mut list = home.fresh();
        if let Err(e) = list.receive(data) {
            // The list, its store and its key are sound: any failure here
            // is the input's, and an input's failure must be an outcome.
            panic!("receive failed: {e}");
        }
    });
}
