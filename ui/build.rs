//! Compiles the views; debug info lets the tests find elements by their
//! accessible labels.

fn main() {
    let config = slint_build::CompilerConfiguration::new().with_debug_info(true);
    if let Err(e) = slint_build::compile_with_config("ui/app.slint", config) {
        // A build script reports failure by panicking; the message is the
        // compiler's.
        panic!("compiling ui/app.slint: {e}");
    }
}
