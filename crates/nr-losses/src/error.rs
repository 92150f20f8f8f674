//! Errors of the loss functions: one line naming the tensor or parameter at fault.

/// Why a loss could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum LossError {
    /// A tensor's shape does not fit the others.
    #[error("loss input: {tensor} has shape {found:?}, expected {expected}")]
    Shape {
        tensor: &'static str,
        found: Vec<usize>,
        expected: String,
    },
    /// A parameter (temperature, weight, margin) is out of range.
    #[error("loss parameter: {name} = {value}: {detail}")]
    Parameter {
        name: &'static str,
        value: f64,
        detail: &'static str,
    },
}

pub(crate) fn shape(tensor: &'static str, found: &[usize], expected: String) -> LossError {
    LossError::Shape {
        tensor,
        found: found.to_vec(),
        expected,
    }
}

/// Fails unless `value` is finite and positive (temperatures).
pub(crate) fn positive(name: &'static str, value: f32) -> Result<(), LossError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(LossError::Parameter {
            name,
            value: value as f64,
            detail: "must be finite and positive",
        })
    }
}
