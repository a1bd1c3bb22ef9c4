// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the core against an in-memory ring peer (written next).

#[kernel::prelude::kunit_tests(xenbus_rs_core)]
mod tests {
    #[test]
    fn placeholder() {}
}
