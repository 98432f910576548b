//! Any bytes as the text of an audit record: the parser never panics, and what it accepts
//! has the fields it promises.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(r) = syscall_recorder::audit::parse_record(&text) {
        let _ = r.name();
        let _ = format!("{r:?}");
    }
});
