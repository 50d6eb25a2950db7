//! The built-in Gemmini architecture (MODEL.md sections 2 and 7): what a network file gets when
//! it names no architecture, and the instance `examples/gemmini.dosa` spells out.

use crate::ir::{
    AccessEnergy, Arch, Bandwidth, Bound, Dim, Instances, Level, SpatialDim, Tensor, TensorSet,
};

/// Energy of one 8-bit MAC in the reference data (Timeloop's default).
pub const GEMMINI_MAC_PJ: f64 = 0.5608;

/// Gemmini as shipped: 16x16 PEs, 256 KiB scratchpad, 64 KiB accumulator, both double-buffered.
pub fn gemmini_arch() -> Arch {
    let w = TensorSet::default().with(Tensor::W);
    Arch {
        name: "gemmini".to_string(),
        pe_dim: Bound::Fixed(16),
        pe_min: 2,
        mac_energy_pj: GEMMINI_MAC_PJ,
        mapspace: Default::default(),
        levels: vec![
            Level {
                name: "Registers".to_string(),
                keeps: w,
                word_bits: 8,
                capacity: Bound::Fixed(1),
                double_buffered: false,
                instances: Instances::PerPe,
                bandwidth: None,
                energy: AccessEnergy::timeloop_sram(8),
                spatial: vec![],
                temporal: Some(vec![Dim::P, Dim::Q]),
                is_backing: false,
            },
            Level {
                name: "Accumulator".to_string(),
                keeps: TensorSet::default().with(Tensor::O),
                word_bits: 32,
                // 64 KiB over 16 columns.
                capacity: Bound::Fixed(4 * 1024),
                double_buffered: true,
                instances: Instances::PerColumn,
                bandwidth: Some(Bandwidth::PerSpatial(2.0, Dim::K)),
                energy: AccessEnergy::timeloop_sram(32),
                spatial: vec![SpatialDim {
                    dim: Dim::C,
                    max: None,
                }],
                temporal: None,
                is_backing: false,
            },
            Level {
                name: "Scratchpad".to_string(),
                keeps: w.with(Tensor::I),
                word_bits: 8,
                capacity: Bound::Fixed(256 * 1024),
                double_buffered: true,
                instances: Instances::Single,
                bandwidth: Some(Bandwidth::PerPeDim(2.0)),
                energy: AccessEnergy::timeloop_sram(8),
                spatial: vec![SpatialDim {
                    dim: Dim::K,
                    max: None,
                }],
                temporal: None,
                is_backing: false,
            },
            Level {
                name: "DRAM".to_string(),
                keeps: w.with(Tensor::I).with(Tensor::O),
                word_bits: 8,
                capacity: Bound::Free,
                double_buffered: false,
                instances: Instances::Single,
                bandwidth: Some(Bandwidth::Words(8.0)),
                energy: AccessEnergy::timeloop_dram(8),
                spatial: vec![],
                temporal: None,
                is_backing: true,
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energies_match_model_md_table() {
        let a = gemmini_arch();
        let close = |x: f64, y: f64| (x - y).abs() < 1e-4;
        assert!(close(a.levels[0].energy.at(1.0 / 1024.0), 0.48746));
        // Accumulator: 0.1005 * (acc_KB/pe_dim) + 1.9497
        assert!(close(a.levels[1].energy.at(0.0), 1.9497));
        assert!(close(
            a.levels[1].energy.at(1.0) - a.levels[1].energy.at(0.0),
            0.1005
        ));
        assert!(close(a.levels[2].energy.at(0.0), 0.4874));
        assert!(close(
            a.levels[2].energy.at(1.0) - a.levels[2].energy.at(0.0),
            0.025126
        ));
        assert!(close(a.levels[3].energy.at(123.0), 100.0));
    }
}
