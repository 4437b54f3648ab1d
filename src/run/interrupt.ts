// Ctrl-C during a long run: the first SIGINT asks the loop to stop after the current step (so the run folder stays
// valid); a second one exits at once.
export interface StopFlag {
  readonly requested: boolean;
  request(): void;
}

export function stopFlag(): StopFlag {
  let requested = false;
  return {
    get requested() {
      return requested;
    },
    request() {
      requested = true;
    },
  };
}

export async function withInterrupt<T>(flag: StopFlag, fn: () => Promise<T>, say: (l: string) => void): Promise<T> {
  const onSigint = () => {
    if (flag.requested) process.exit(130);
    say('reno: stopping after the current step (Ctrl-C again to quit now)');
    flag.request();
  };
  process.on('SIGINT', onSigint);
  try {
    return await fn();
  } finally {
    process.off('SIGINT', onSigint);
  }
}
