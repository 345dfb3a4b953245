export function OperatorView() {
  return <p>Operator view: coming in the next commit.</p>;
}
