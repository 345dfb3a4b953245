import { render } from 'preact';
import { App } from './app.js';
import './style.css';

const host = document.getElementById('app');
if (host) {
  // Preact renders next to what is there: drop the "Loading" placeholder first.
  host.replaceChildren();
  render(<App />, host);
}
