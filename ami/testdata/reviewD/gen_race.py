# queue-local-n-member-dials-before-agentcalled.ami: ../derived/queue-local-n-caller-hangs-up.ami
# with the queue thread's AgentCalled + DialBegin (app_queue.c ring_entry, published after
# ast_call returns) delivered after the Local ;2's own Dial(PJSIP/100) began: ast_call starts
# the ;2's PBX thread (core_local.c local_call -> ast_pbx_start), which races the queue thread
# re-taking both channel locks.
import re
raw = open('../derived/queue-local-n-caller-hangs-up.ami', newline='').read()
fr = raw.split('\r\n\r\n')
def ts(f):
    return float(re.search(r'Timestamp: ([0-9.]+)', f).group(1))
moved = [fr[14], fr[15]]
rest = fr[:14] + fr[16:20]
t19 = ts(fr[19])
moved = [re.sub(r'Timestamp: [0-9.]+', 'Timestamp: %.6f' % (t19 + 0.0002 * (i + 1)), f) for i, f in enumerate(moved)]
out = rest + moved + fr[20:]
open('queue-local-n-member-dials-before-agentcalled.ami', 'w', newline='').write('\r\n\r\n'.join(out))
