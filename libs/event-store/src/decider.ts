// The Decider shape moved to @pf/contracts so that domain code, which may import only
// @pf/contracts and @pf/money (eslint.config.js), can name it; re-exported for existing users.
export { fold, type Decider } from '@pf/contracts';
