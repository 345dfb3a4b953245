/**
 * Errors are values with codes. This library may not import @pf/contracts (it is a leaf
 * `type:domain` lib), so the codes are plain strings; `invalid_amount` is the same string as
 * `ErrorCode.invalidAmount` there, which is how the gateway maps it to a 400 in one place.
 */

/** Input from outside (an API body, a config value) is not an acceptable USD amount. */
export class InvalidAmountError extends Error {
  readonly code = 'invalid_amount';

  constructor(
    message: string,
    /** The input field the amount came from, e.g. `amount_usd`. */
    readonly field: string,
  ) {
    super(message);
    this.name = 'InvalidAmountError';
  }
}

export type MoneyRangeErrorCode = 'negative_result' | 'invalid_split' | 'invalid_basis_points';

/**
 * A computation was asked to do something that would break a money invariant (a negative
 * result where none may exist, shares that do not add up to 100%). Raised by our own code,
 * never by user input directly: seeing one is a found bug or a bad config.
 */
export class MoneyRangeError extends RangeError {
  constructor(
    readonly code: MoneyRangeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MoneyRangeError';
  }
}
