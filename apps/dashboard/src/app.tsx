import { useEffect, useState } from 'preact/hooks';
import { OperatorView } from './operator-view.js';
import { PublicView } from './public-view.js';

type View = 'public' | 'operator';

function viewOfHash(): View {
  return window.location.hash === '#operator' ? 'operator' : 'public';
}

/** Two views on one page; the hash picks one so a reload or a link keeps it. */
export function App() {
  const [view, setView] = useState<View>(viewOfHash);
  useEffect(() => {
    const onHash = () => setView(viewOfHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  return (
    <>
      <header>
        <h1>Agent marketplace</h1>
        <nav aria-label="Views">
          <a href="#public" aria-current={view === 'public' ? 'page' : undefined}>
            Public
          </a>
          <a href="#operator" aria-current={view === 'operator' ? 'page' : undefined}>
            Operator
          </a>
          <a href="/docs">API docs</a>
        </nav>
      </header>
      <main>{view === 'public' ? <PublicView /> : <OperatorView />}</main>
    </>
  );
}
