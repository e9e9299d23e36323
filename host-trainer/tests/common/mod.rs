//! Fixtures shared by the integration tests.

use simnas_shared::{Arch, ArchCode, Op};

/// SplitMix64's finaliser mapped to `[0, 1]`: a fixed pseudo-random number per `z`.
pub fn mix(mut z: u64) -> f64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as f64 / u64::MAX as f64
}

/// A synthetic score table for every cell (the CSV `simnas score --all` writes): NASWOT
/// grows with the convolutions, the rest is fixed noise.
pub fn scores_csv() -> String {
    let mut scores = String::from("index,arch,naswot,logsynflow,skip\n");
    for c in ArchCode::all() {
        let a = Arch::from_code(c);
        let k = u64::from(c.get());
        let conv = a.count(Op::NorConv3x3) as f64 + 0.5 * a.count(Op::NorConv1x1) as f64;
        scores += &format!(
            "{k},{a},{:.6},{:.6},{:.3}\n",
            1500.0 + 40.0 * conv + 30.0 * mix(k),
            20.0 * mix(k + 99),
            mix(k + 7)
        );
    }
    scores
}
