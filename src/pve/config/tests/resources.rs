use super::*;

#[test]
fn cpulimit_rendering() {
    assert_eq!(CpuLimit::from_units(0), None);
    assert_eq!(CpuLimit::from_units(8192 * 100_000 + 1), None);
    assert_eq!(CpuLimit::from_units(100_000).unwrap().render(), "1");
    assert_eq!(CpuLimit::from_units(120_500).unwrap().render(), "1.205");
}
