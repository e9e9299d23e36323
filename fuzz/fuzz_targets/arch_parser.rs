//! The NATS-Bench cell-string parser on arbitrary text: nothing panics, and a string that
//! parses formats to a canonical string that parses to the same cell and code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simnas_shared::Arch;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(arch) = Arch::parse(s) {
        let text = arch.to_string();
        let again = Arch::parse(&text).expect("a formatted cell parses");
        assert_eq!(again, arch);
        assert_eq!(Arch::from_code(arch.code()), arch);
    }
});
