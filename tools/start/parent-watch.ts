import { readFileSync } from 'node:fs';

/** How often the launcher checks that whoever started it is still there. */
export const PARENT_CHECK_INTERVAL_MS = 500;
/** `npm start` is npm → sh → launcher; a few more hops allow for npx or a wrapper script. */
const NPM_SEARCH_HOPS_MAX = 4;

/** A process and the parent it had when the launcher started. */
interface Link {
  pid: number;
  parentPid: number;
}

/**
 * Watches the processes between the launcher and the one that started it, because Node has no
 * PR_SET_PDEATHSIG: `npm start &` then `kill $!` ends npm, and its shell and the launcher would
 * live on (reparented) with every app. The chain is the launcher's parent and, when run by
 * npm, every process up to npm itself; a link whose parent changed means a process in it died.
 * Without /proc (not Linux) only the launcher's own parent is checked, by pid.
 */
export function watchParents(
  onGone: (description: string) => void,
  intervalMs = PARENT_CHECK_INTERVAL_MS,
): () => void {
  const chain = startChain();
  const timer = setInterval(() => {
    const broken = chain.find((link) => !stillLinked(link));
    if (!broken) return;
    clearInterval(timer);
    onGone(
      broken.pid === process.pid
        ? `parent process ${broken.parentPid} exited`
        : `ancestor process ${broken.parentPid} exited`,
    );
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

function startChain(): Link[] {
  const chain: Link[] = [{ pid: process.pid, parentPid: process.ppid }];
  if (!process.env.npm_lifecycle_event && !process.env.npm_command) return chain;
  // Up to npm: the links sh → npm (and any between) must hold too.
  for (let hop = 0; hop < NPM_SEARCH_HOPS_MAX; hop += 1) {
    const last = chain[chain.length - 1]!;
    if (isNpm(last.parentPid)) return chain;
    const grandParentPid = parentOf(last.parentPid);
    if (grandParentPid === undefined || grandParentPid <= 1) break;
    chain.push({ pid: last.parentPid, parentPid: grandParentPid });
  }
  // npm not found: watching beyond the direct parent could stop us for an unrelated exit.
  return chain.slice(0, 1);
}

function stillLinked(link: Link): boolean {
  const parentPid = parentOf(link.pid);
  if (parentPid !== undefined) return parentPid === link.parentPid;
  if (link.pid !== process.pid) return false;
  return isAlive(link.parentPid);
}

/** The parent pid from /proc/<pid>/stat (undefined when gone, a zombie, or no /proc). */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') return undefined;
    return Number(fields[1]);
  } catch {
    return undefined;
  }
}

function isNpm(pid: number): boolean {
  try {
    return /(^|[/\0\s])npm(-cli\.js)?(\0|\s|$)/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
