//! The shipped bundle and its FP32 model on the CPU, loaded once for the recommendation tests.

use std::sync::OnceLock;

use crate::backend::cpu::CpuBackend;
use crate::backend::Precision;
use crate::bundle::Bundle;

pub(crate) struct Shipped {
    pub(crate) bundle: Bundle,
    pub(crate) backend: CpuBackend,
}

pub(crate) fn shipped() -> &'static Shipped {
    static SHIPPED: OnceLock<Shipped> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("engines/packd-default");
        let bundle = Bundle::open(&dir).expect("shipped bundle");
        let backend = CpuBackend::load(&bundle, Precision::Fp32).expect("cpu backend");
        Shipped { bundle, backend }
    })
}
