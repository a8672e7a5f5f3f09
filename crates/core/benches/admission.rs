//! Benchmarks for quota admission (filled in by the quota-model work).

fn main() {
    divan::main();
}
