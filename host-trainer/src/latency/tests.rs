use super::*;
use simnas_shared::Op;

fn arch(code: u16) -> Arch {
    Arch::from_code(ArchCode::new(code).unwrap())
}

fn read(text: &str, policy: InvalidPolicy) -> Result<LatencyTable, LatencyError> {
    LatencyTable::read(text.as_bytes(), Path::new("t.csv"), "lat_ms", None, policy)
}

fn arch_table(rows: &[(u16, &str)]) -> String {
    let mut s = String::from("arch,other,lat_ms\n");
    for (c, v) in rows {
        s += &format!("{},x,{v}\n", arch(*c));
    }
    s
}

#[test]
fn reads_arch_keyed_tables_with_gaps() {
    let t = read(&arch_table(&[(0, "1.5"), (7, ""), (15624, " 2.25 ")]), InvalidPolicy::Reject).unwrap();
    assert_eq!(t.get(arch(0)), Some(1.5));
    assert_eq!(t.get(arch(7)), None);
    assert_eq!(t.get(arch(15624)), Some(2.25));
    assert_eq!(t.get(Arch::uniform(Op::SkipConnect)), None);
    assert_eq!(t.measured(), 2);
    assert_eq!(t.source, "t.csv#lat_ms");
}

#[test]
fn refuses_bad_values_with_the_line() {
    let e = read(&arch_table(&[(0, "1"), (1, "NaN")]), InvalidPolicy::Reject).unwrap_err();
    assert!(matches!(e, LatencyError::NotFinite { line: 3, .. }), "{e}");
    let e = read(&arch_table(&[(0, "inf")]), InvalidPolicy::Skip).unwrap_err();
    assert!(matches!(e, LatencyError::NotFinite { .. }), "{e}");
    let e = read(&arch_table(&[(0, "1"), (1, "-1")]), InvalidPolicy::Reject).unwrap_err();
    assert!(matches!(e, LatencyError::NonPositive { line: 3, value, .. } if value == -1.0), "{e}");
    assert!(e.to_string().contains("not positive"));
    let e = read(&arch_table(&[(0, "0")]), InvalidPolicy::Reject).unwrap_err();
    assert!(matches!(e, LatencyError::NonPositive { .. }));
    let e = read(&arch_table(&[(0, "fast")]), InvalidPolicy::Reject).unwrap_err();
    assert!(e.to_string().contains("line 2") && e.to_string().contains("not a number"), "{e}");
    let e = read(&arch_table(&[(0, "1"), (0, "2")]), InvalidPolicy::Reject).unwrap_err();
    assert!(matches!(e, LatencyError::Duplicate { line: 3, first_line: 2, .. }), "{e}");
    let e = read("arch,lat_ms\n|bogus~0|,1\n", InvalidPolicy::Reject).unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    let e = read(&arch_table(&[(0, ""), (1, "")]), InvalidPolicy::Reject).unwrap_err();
    assert!(matches!(e, LatencyError::Empty { .. }));
}

#[test]
fn skip_policy_counts_what_it_drops() {
    let t = read(&arch_table(&[(0, "1"), (1, "-1"), (2, "0"), (3, "2")]), InvalidPolicy::Skip).unwrap();
    assert_eq!((t.measured(), t.skipped()), (2, 2));
    assert_eq!(t.get(arch(1)), None);
}

#[test]
fn refuses_missing_columns_and_keys() {
    let e = LatencyTable::read("arch,a_ms\n".as_bytes(), Path::new("t.csv"), "b_ms", None, InvalidPolicy::Reject)
        .unwrap_err();
    assert!(matches!(&e, LatencyError::MissingColumn { available, .. } if available == "arch,a_ms"), "{e}");
    let e = read("cell,lat_ms\nx,1\n", InvalidPolicy::Reject).unwrap_err();
    assert!(matches!(e, LatencyError::MissingKey { .. }));
    let e = read("index,lat_ms\n0,1\n", InvalidPolicy::Reject).unwrap_err();
    assert!(matches!(e, LatencyError::NeedsIndexMap { .. }), "{e}");
}

#[test]
fn index_keyed_tables_use_the_map() {
    // A map that lists cells by code in reverse: index i <-> code 15624 - i.
    let mut s = String::from("index,arch\n");
    for i in 0..NUM_ARCHS {
        s += &format!("{i},{}\n", arch((NUM_ARCHS - 1 - i) as u16));
    }
    let map = NatsMap::read(s.as_bytes(), Path::new("m.csv")).unwrap();
    let text = "index,lat_ms\n0,3\n15624,4\n";
    let t =
        LatencyTable::read(text.as_bytes(), Path::new("t.csv"), "lat_ms", Some(&map), InvalidPolicy::Reject).unwrap();
    assert_eq!(t.get(arch(15624)), Some(3.0));
    assert_eq!(t.get(arch(0)), Some(4.0));
    for bad in ["15625", "-1", "x", ""] {
        let text = format!("index,lat_ms\n{bad},3\n");
        let e = LatencyTable::read(text.as_bytes(), Path::new("t.csv"), "lat_ms", Some(&map), InvalidPolicy::Reject)
            .unwrap_err();
        assert!(e.to_string().contains("not a NATS-Bench index"), "{e}");
    }
}

#[test]
fn refuses_more_rows_than_cells() {
    let mut s = String::from("arch,lat_ms\n");
    for c in 0..NUM_ARCHS as u16 {
        s += &format!("{},1\n", arch(c));
    }
    assert_eq!(read(&s, InvalidPolicy::Reject).unwrap().measured(), NUM_ARCHS);
    s += &format!("{},1\n", arch(0));
    assert!(matches!(read(&s, InvalidPolicy::Reject), Err(LatencyError::TooManyRows { .. })));
}

#[test]
fn garbage_never_panics() {
    for text in ["", "\u{0}\u{1}", "arch,lat_ms\n\"unterminated", "arch,lat_ms\n,,,,\n", "lat_ms\n1\n"] {
        let _ = read(text, InvalidPolicy::Reject);
    }
    let e = read("arch,lat_ms\n\u{ff}", InvalidPolicy::Reject);
    assert!(e.is_err());
}
