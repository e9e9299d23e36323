//! The real devices of the benchmark data directory, with stable names and a fixed
//! train/validation split.
//!
//! 44 latency columns: HW-NAS-Bench (Jetson TX2, Edge TPU, Pixel 3, each at three input
//! sizes), HELP (desktop GPUs at three batch sizes, server CPUs, phones) and BRP-NAS
//! (desktop CPU/GPU, Jetson Nano, Edge TPU, Snapdragon CPUs/GPUs/DSPs).
//!
//! **Split, by family.** Validation holds out whole hardware types, so nothing close to a
//! validation device is ever fitted: a HW-NAS-Bench device at another input size, or a HELP
//! GPU at another batch size, is the same hardware. Six validation families, one per broad
//! kind of hardware (phone CPU, desktop GPU, server CPU, phone, SoC, embedded GPU):
//!
//! | family | columns | why it is a good test |
//! |---|---|---|
//! | `pixel3` | HW-NAS-Bench Pixel 3, 3 input sizes | mobile CPU (TFLite), steep conv costs |
//! | `titanxp` | HELP Titan Xp, batch 1/32/256 | a GPU not seen, other GPUs of the same era are |
//! | `xeon_silver_4114` | HELP | a server CPU; two other Xeons are in training |
//! | `samsung_s7` | HELP | a phone with integer-ms timings |
//! | `sd855` | BRP-NAS Snapdragon 855 CPU, GPU, DSP | a whole SoC held out |
//! | `jetson_nano` | BRP-NAS Jetson Nano fp16, fp32 | embedded GPU |
//!
//! The headline validation device of each family is marked `primary` (the first listed).
//! BRP-NAS's desktop CPU and GPU columns are near duplicates (Kendall tau 0.97): both are
//! training devices, so they only weigh double in the fit.

use std::path::{Path, PathBuf};

/// Which side of the split a device is on (the distribution file's type).
pub use simnas_formats::distribution::Split;

/// One latency column of the benchmark data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchDevice {
    /// Stable name (`source-device[-setting]`).
    pub name: &'static str,
    /// File in the data directory.
    pub file: &'static str,
    /// Latency column (ms).
    pub column: &'static str,
    /// Hardware family: devices of one family are on the same side of the split.
    pub family: &'static str,
    /// Train or validation.
    pub split: Split,
    /// The headline device of a validation family.
    pub primary: bool,
}

impl BenchDevice {
    /// Path of the file in `dir`.
    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join(self.file)
    }

    /// The `table:PATH#COLUMN` device spec of this column.
    pub fn spec(&self, dir: &Path) -> String {
        format!("table:{}#{}", self.path(dir).display(), self.column)
    }
}

const HW10: &str = "latency_hwnasbench_cifar10.csv";
const HW100: &str = "latency_hwnasbench_cifar100.csv";
const HW16: &str = "latency_hwnasbench_imagenet16.csv";
const HELP: &str = "latency_help.csv";
const BRP: &str = "latency_brpnas.csv";

const fn d(name: &'static str, file: &'static str, column: &'static str, family: &'static str) -> BenchDevice {
    BenchDevice { name, file, column, family, split: Split::Train, primary: false }
}
const fn v(name: &'static str, file: &'static str, column: &'static str, family: &'static str) -> BenchDevice {
    BenchDevice { name, file, column, family, split: Split::Validation, primary: false }
}
const fn vp(name: &'static str, file: &'static str, column: &'static str, family: &'static str) -> BenchDevice {
    BenchDevice { name, file, column, family, split: Split::Validation, primary: true }
}

/// Every latency column of the benchmark data directory.
pub const DEVICES: [BenchDevice; 44] = [
    d("hw-c10-edgegpu", HW10, "edgegpu_latency_ms", "jetson_tx2"),
    d("hw-c100-edgegpu", HW100, "edgegpu_latency_ms", "jetson_tx2"),
    d("hw-in16-edgegpu", HW16, "edgegpu_latency_ms", "jetson_tx2"),
    d("hw-c10-edgetpu", HW10, "edgetpu_latency_ms", "edgetpu_hw"),
    d("hw-c100-edgetpu", HW100, "edgetpu_latency_ms", "edgetpu_hw"),
    d("hw-in16-edgetpu", HW16, "edgetpu_latency_ms", "edgetpu_hw"),
    vp("hw-c10-pixel3", HW10, "pixel3_latency_ms", "pixel3"),
    v("hw-c100-pixel3", HW100, "pixel3_latency_ms", "pixel3"),
    v("hw-in16-pixel3", HW16, "pixel3_latency_ms", "pixel3"),
    d("help-gtx1080ti-bs1", HELP, "gtx1080ti_bs1_ms", "gtx1080ti"),
    d("help-gtx1080ti-bs32", HELP, "gtx1080ti_bs32_ms", "gtx1080ti"),
    d("help-gtx1080ti-bs256", HELP, "gtx1080ti_bs256_ms", "gtx1080ti"),
    d("help-rtx2080ti-bs1", HELP, "rtx2080ti_bs1_ms", "rtx2080ti"),
    d("help-rtx2080ti-bs32", HELP, "rtx2080ti_bs32_ms", "rtx2080ti"),
    d("help-rtx2080ti-bs256", HELP, "rtx2080ti_bs256_ms", "rtx2080ti"),
    d("help-titanx-bs1", HELP, "titanx_bs1_ms", "titanx"),
    d("help-titanx-bs32", HELP, "titanx_bs32_ms", "titanx"),
    d("help-titanx-bs256", HELP, "titanx_bs256_ms", "titanx"),
    vp("help-titanxp-bs1", HELP, "titanxp_bs1_ms", "titanxp"),
    v("help-titanxp-bs32", HELP, "titanxp_bs32_ms", "titanxp"),
    v("help-titanxp-bs256", HELP, "titanxp_bs256_ms", "titanxp"),
    d("help-titanrtx-bs1", HELP, "titanrtx_bs1_ms", "titanrtx"),
    d("help-titanrtx-bs32", HELP, "titanrtx_bs32_ms", "titanrtx"),
    d("help-xeon-gold-6240", HELP, "xeon_gold_6240_ms", "xeon_gold_6240"),
    vp("help-xeon-silver-4114", HELP, "xeon_silver_4114_ms", "xeon_silver_4114"),
    d("help-xeon-silver-4210r", HELP, "xeon_silver_4210r_ms", "xeon_silver_4210r"),
    d("help-essential-ph1", HELP, "essential_ph1_ms", "essential_ph1"),
    d("help-samsung-a50", HELP, "samsung_a50_ms", "samsung_a50"),
    vp("help-samsung-s7", HELP, "samsung_s7_ms", "samsung_s7"),
    d("brp-desktop-cpu", BRP, "desktop_cpu_i7_7820x_fp32_ms", "desktop_brp"),
    d("brp-desktop-gpu", BRP, "desktop_gpu_gtx1080ti_fp32_ms", "desktop_brp"),
    d("brp-desktop-gpu-large", BRP, "desktop_gpu_gtx1080ti_large_ms", "desktop_brp"),
    vp("brp-jetson-nano-fp16", BRP, "jetson_nano_gpu_fp16_ms", "jetson_nano"),
    v("brp-jetson-nano-fp32", BRP, "jetson_nano_gpu_fp32_ms", "jetson_nano"),
    d("brp-edgetpu", BRP, "edgetpu_int8_ms", "edgetpu_brp"),
    d("brp-edgetpu-large", BRP, "edgetpu_large_ms", "edgetpu_brp"),
    d("brp-sd450-cpu", BRP, "sd450_cpu_cortex_a53_int8_ms", "sd450"),
    d("brp-sd450-gpu", BRP, "sd450_gpu_adreno506_int8_ms", "sd450"),
    d("brp-sd675-cpu", BRP, "sd675_cpu_kryo460_int8_ms", "sd675"),
    d("brp-sd675-gpu", BRP, "sd675_gpu_adreno612_int8_ms", "sd675"),
    d("brp-sd675-dsp", BRP, "sd675_dsp_hexagon685_int8_ms", "sd675"),
    vp("brp-sd855-cpu", BRP, "sd855_cpu_kryo485_int8_ms", "sd855"),
    v("brp-sd855-gpu", BRP, "sd855_gpu_adreno640_int8_ms", "sd855"),
    v("brp-sd855-dsp", BRP, "sd855_dsp_hexagon690_int8_ms", "sd855"),
];

/// The device with this name.
pub fn by_name(name: &str) -> Option<&'static BenchDevice> {
    DEVICES.iter().find(|d| d.name == name)
}

/// Devices on one side of the split.
pub fn split(which: Split) -> impl Iterator<Item = &'static BenchDevice> {
    DEVICES.iter().filter(move |d| d.split == which)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_and_families_on_one_side() {
        let mut names = std::collections::HashSet::new();
        for d in &DEVICES {
            assert!(names.insert(d.name), "{}", d.name);
            for e in DEVICES.iter().filter(|e| e.family == d.family) {
                assert_eq!(e.split, d.split, "family {} split across train and validation", d.family);
            }
        }
        assert_eq!(split(Split::Validation).filter(|d| d.primary).count(), 6);
        assert!(split(Split::Train).all(|d| !d.primary));
    }
}
