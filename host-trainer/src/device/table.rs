//! A measured latency table as a device: `table:PATH#COLUMN`.
//!
//! Each lookup is one probe (the table is the device's measurements, replayed). The table
//! is read with [`LatencyTable`] under [`InvalidPolicy::Reject`]: a `NaN`, an infinity or a
//! non-positive latency anywhere in the column refuses the whole device, so a search never
//! sees a made-up number. A cell the table has no value for (BRP-NAS lacks the 341
//! disconnected cells) answers [`DeviceError::NotMeasured`]: nothing was measured, and the
//! search skips that cell without spending budget.

use super::{Device, DeviceError, Probe};
use crate::data::NatsMap;
use crate::latency::{InvalidPolicy, LatencyError, LatencyTable};
use simnas_shared::{Arch, Op};
use std::path::Path;

/// The least share (percent) of the connected executed networks a device table must have
/// a latency for.
pub const MIN_COVERAGE_PERCENT: f64 = 10.0;

/// A latency table replayed as a device.
#[derive(Clone, Debug)]
pub struct TableDevice {
    table: LatencyTable,
    lookups: usize,
}

impl TableDevice {
    /// Read `column` of the CSV at `path`; `map` is needed for `index`-keyed tables.
    pub fn open(path: &Path, column: &str, map: Option<&NatsMap>) -> Result<TableDevice, LatencyError> {
        Ok(TableDevice::new(LatencyTable::load(path, column, map, InvalidPolicy::Reject)?))
    }

    /// The same device, if a search can use it: a table covering less than `min_percent`
    /// (by default [`MIN_COVERAGE_PERCENT`]) of the connected executed networks, or missing
    /// a reference cell, is refused (a search on it would mostly skip). `path` and
    /// `column` name it.
    pub fn searchable(self, path: &Path, column: &str, min_percent: f64) -> Result<TableDevice, LatencyError> {
        let space = edge_runtime::search::Space::Executed;
        let total = space.len();
        let covered = (0..self.table.values().len())
            .filter(|&c| space.contains_code(c) && self.table.values()[c].is_some())
            .count();
        let percent = 100.0 * covered as f64 / total as f64;
        let references =
            [Op::SkipConnect, Op::NorConv3x3].iter().all(|&op| self.table.get(Arch::uniform(op)).is_some());
        if percent < min_percent || !references {
            return Err(LatencyError::Sparse {
                path: path.to_path_buf(),
                column: column.to_string(),
                covered,
                total,
                percent,
                min_percent,
            });
        }
        Ok(self)
    }

    /// Why `column` may not hold milliseconds, judged by its name (an energy, accuracy or
    /// parameter column is read as latency otherwise): `None` when it looks like one.
    pub fn column_warning(column: &str) -> Option<String> {
        let c = column.to_ascii_lowercase();
        let suspicious = ["energy", "mj", "acc", "test", "valid", "param", "flop", "top1", "top5"];
        let looks_like_ms = c.ends_with("ms") || c.contains("_ms") || c.contains("lat") || c.contains("time");
        match suspicious.iter().find(|s| c.contains(*s)) {
            Some(s) => Some(format!(
                "column {column:?} looks like {s:?}, not a latency; simnas reads its values as milliseconds"
            )),
            None if !looks_like_ms => Some(format!(
                "column {column:?} does not say it holds milliseconds (no 'ms', 'latency' or 'time' in its name); simnas reads its values as milliseconds"
            )),
            None => None,
        }
    }

    /// A device replaying `table`.
    pub fn new(table: LatencyTable) -> TableDevice {
        TableDevice { table, lookups: 0 }
    }

    /// The whole table (for the `oracle` reference and the evaluation only; a search
    /// strategy never reads it).
    pub fn table(&self) -> &LatencyTable {
        &self.table
    }

    /// Lookups answered with a latency so far.
    pub fn lookups(&self) -> usize {
        self.lookups
    }
}

impl Device for TableDevice {
    fn name(&self) -> String {
        format!("table:{}", self.table.source)
    }

    fn probe(&mut self, arch: Arch) -> Result<Probe, DeviceError> {
        let ms = self
            .table
            .get(arch)
            .ok_or_else(|| DeviceError::NotMeasured { table: self.table.source.clone(), arch: arch.to_string() })?;
        self.lookups += 1;
        Ok(Probe { latency_ms: ms, min_ms: ms, spread: 0.0, repeats: 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simnas_shared::NUM_ARCHS;

    #[test]
    fn lookups_are_probes_and_gaps_are_not_measured() {
        let mut vals = vec![Some(2.0); NUM_ARCHS];
        vals[Arch::uniform(Op::None).code().get() as usize] = None;
        let mut dev = TableDevice::new(LatencyTable::from_codes("t.csv#ms", vals).unwrap());
        assert_eq!(dev.probe(Arch::uniform(Op::SkipConnect)).unwrap().latency_ms, 2.0);
        let e = dev.probe(Arch::uniform(Op::None)).unwrap_err();
        assert!(matches!(e, DeviceError::NotMeasured { .. }), "{e}");
        assert!(e.to_string().contains("t.csv#ms has no measurement"), "{e}");
        assert_eq!(dev.lookups(), 1);
        assert_eq!(dev.name(), "table:t.csv#ms");
    }

    #[test]
    fn table_specs_parse_and_print_back() {
        use crate::device::DeviceSpec;
        let spec: DeviceSpec = "table:data/lat#x.csv#pixel3_ms".parse().unwrap();
        assert_eq!(spec, DeviceSpec::Table { path: "data/lat#x.csv".into(), column: "pixel3_ms".into() });
        assert_eq!(spec.to_string(), "table:data/lat#x.csv#pixel3_ms");
        // A column name with a `#` is written `\#`.
        let spec: DeviceSpec = "table:data/lat.csv#run\\#2_ms".parse().unwrap();
        assert_eq!(spec, DeviceSpec::Table { path: "data/lat.csv".into(), column: "run#2_ms".into() });
        assert_eq!(spec.to_string(), "table:data/lat.csv#run\\#2_ms");
        for bad in ["table:", "table:a.csv", "table:#col", "table:a.csv#", "tabel:a.csv#c"] {
            let e = bad.parse::<DeviceSpec>().unwrap_err();
            assert!(e.contains("table:PATH#COLUMN"), "{bad}: {e}");
        }
    }
}
