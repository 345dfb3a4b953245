import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  label: string;
  /** CSS colour of the line. */
  stroke: string;
}

/**
 * A time-series line chart (uPlot: canvas, ~50 kB, no dependencies). `times` are Unix seconds;
 * each row of `values` belongs to one series. The numbers are for drawing only; the amounts the
 * page states in words are exact strings beside the chart.
 */
export function LineChart(props: {
  title: string;
  times: number[];
  values: number[][];
  series: Series[];
  valueLabel: string;
  /** Where the points came from (`history` once the past was loaded): for tests and readers. */
  source?: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    if (!host.current) return;
    const width = Math.max(280, Math.min(host.current.clientWidth || 560, 720));
    plot.current = new uPlot(
      {
        width,
        height: 220,
        series: [
          {},
          ...props.series.map((series) => ({ label: series.label, stroke: series.stroke, width: 2 })),
        ],
        axes: [{}, { label: props.valueLabel, size: 70 }],
        scales: { x: { time: true } },
      },
      [props.times, ...props.values],
      host.current,
    );
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
    // The chart is built once; later data goes through setData below.
  }, []);

  useEffect(() => {
    plot.current?.setData([props.times, ...props.values]);
  }, [props.times, props.values]);

  return (
    <figure
      class="chart"
      aria-label={props.title}
      ref={host}
      data-testid="volume-chart"
      data-points={props.times.length}
      data-source={props.source}
    />
  );
}

/** A bar per category as plain HTML: readable by screen readers, no canvas needed. */
export function Bars(props: { title: string; rows: Array<{ label: string; value: number }> }) {
  const max = Math.max(1, ...props.rows.map((row) => row.value));
  return (
    <table class="bars" aria-label={props.title}>
      <tbody>
        {props.rows.map((row) => (
          <tr key={row.label}>
            <th scope="row">{row.label}</th>
            <td>
              <span class="bar" style={{ width: `${(100 * row.value) / max}%` }} />
            </td>
            <td class="num">{row.value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
