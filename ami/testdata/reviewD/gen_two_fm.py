# Builds freepbx-queue-two-followme-members-100s-mobile-answers.ami from
# ../derived/freepbx-queue-member-followme-mobile-answers-mobile-hangs-up.ami:
# queue 400 (ringall) has a second member, Local/101@from-queue/n, whose
# extension 101 has Follow Me on too (list 101-5550102#). The queue rings
# 101's member first (queue order), its ;2 runs the same FreePBX chain
# (FM101 -> Dial(Local/FMPR-101&Local/FMGL-5550102#)); FMPR-101's prering
# times out as FMPR-100's does; 100's mobile answers; app_queue cancels
# 101's member (DialEnd CANCEL, Hangup cause 26 down the chain).
import re
src = '../derived/freepbx-queue-member-followme-mobile-answers-mobile-hangs-up.ami'
raw = open(src, newline='').read()
fr = raw.split('\r\n\r\n')

ren = [
    ('Local/100@from-queue-00000002', 'Local/101@from-queue-00000012'),
    ('Local/FMPR-100@from-internal-00000003', 'Local/FMPR-101@from-internal-00000013'),
    ('Local/FMGL-5550101#@from-internal-00000004', 'Local/FMGL-5550102#@from-internal-00000014'),
    ('PJSIP/100-00000005', 'PJSIP/101-00000015'),
    ('Local/100@from-queue/n', 'Local/101@from-queue/n'),
    ('FMPR-100', 'FMPR-101'), ('FMGL-5550101#', 'FMGL-5550102#'), ('FM100', 'FM101'),
]
ids = {'1796268000.%d' % i: '1796268000.%d' % (i + 10) for i in range(1, 8)}

def clone(f):
    for a, b in ren:
        f = f.replace(a, b)
    f = re.sub(r'^(Exten|DestExten): 100(?=\r)', r'\1: 101', f, flags=re.M)
    f = re.sub(r'^(CallerIDNum|DestCallerIDNum|MemberName|StateInterface): 100(?=\r)', r'\1: 101', f, flags=re.M)
    def rid(m):
        return m.group(1) + ids.get(m.group(2), m.group(2))
    f = re.sub(r'^((?:Dest|LocalOne|LocalTwo)?(?:Uniqueid|Linkedid): )([^\s]+)(?=\r)', rid, f, flags=re.M)
    return f

def ts(f, t):
    return re.sub(r'^Timestamp: [^\r\n]*', 'Timestamp: %.6f' % t, f, flags=re.M)

member = ('Local/100@from-queue-00000002', 'Local/FMPR-100@', 'Local/FMGL-5550101#@', 'PJSIP/100-00000005')
def ours(f):
    return any(m in f for m in member) and 'QueueMemberStatus' not in f

first = [clone(fr[i]) for i in range(21, 87) if ours(fr[i])]
prering = [clone(fr[i]) for i in range(87, 97) if ours(fr[i])]
first = [ts(f, 1796268000.0190 + k * 0.00001) for k, f in enumerate(first)]
prering = [ts(f, 1796268010.0800 + k * 0.00001) for k, f in enumerate(prering)]

def ev(t, lines):
    return 'Event: %s\r\nPrivilege: call,all\r\nTimestamp: %.6f\r\n' % (lines[0], t) + '\r\n'.join(lines[1:])

def chan(prefix, name, uid, ctx, exten, state='Up', num='101'):
    return ['%sChannel: %s' % (prefix, name), '%sChannelState: %s' % (prefix, {'Up': 6, 'Ring': 4, 'Ringing': 5, 'Down': 0}[state]),
            '%sChannelStateDesc: %s' % (prefix, state), '%sCallerIDNum: %s' % (prefix, num), '%sCallerIDName: %s' % (prefix, num),
            '%sConnectedLineNum: 5551234' % prefix, '%sConnectedLineName: Customer' % prefix, '%sLanguage: en' % prefix,
            '%sAccountCode: ' % prefix, '%sContext: %s' % (prefix, ctx), '%sExten: %s' % (prefix, exten), '%sPriority: 1' % prefix,
            '%sUniqueid: %s' % (prefix, uid), '%sLinkedid: 1796268000.0' % prefix]

trunk = chan('', 'PJSIP/trunk-00000001', '1796268000.0', 'ext-queues', '400', 'Up', '5551234')
m1 = ('Local/101@from-queue-00000012;1', '1796268000.11', 'from-queue', '101')
m2 = ('Local/101@from-queue-00000012;2', '1796268000.12', 'from-queue', 's')
g1 = ('Local/FMGL-5550102#@from-internal-00000014;1', '1796268000.15', 'from-internal', 'FMGL-5550102#')
g2 = ('Local/FMGL-5550102#@from-internal-00000014;2', '1796268000.16', 'from-internal', 'FMGL-5550102#')
t = 1796268014.1459
cancel = [
    ev(t + 0.00001, ['DialEnd'] + trunk + chan('Dest', *m1, state='Ringing') + ['DialStatus: CANCEL']),
    ev(t + 0.00002, ['Hangup'] + chan('', *m1, state='Ringing') + ['Cause: 26', 'Cause-txt: Answered elsewhere']),
    ev(t + 0.00003, ['DialEnd'] + chan('', *m2, state='Ring') + chan('Dest', *g1, state='Ringing') + ['DialStatus: CANCEL']),
    ev(t + 0.00004, ['Hangup'] + chan('', *g2, state='Ring') + ['Cause: 16', 'Cause-txt: Normal Clearing']),
    ev(t + 0.00005, ['Hangup'] + chan('', *g1, state='Ringing') + ['Cause: 16', 'Cause-txt: Normal Clearing']),
    ev(t + 0.00006, ['Hangup'] + chan('', *m2, state='Ring') + ['Cause: 16', 'Cause-txt: Normal Clearing']),
]
out = fr[:21] + first + fr[21:87] + prering + fr[87:148] + cancel + fr[148:]
open('freepbx-queue-two-followme-members-100s-mobile-answers.ami', 'w', newline='').write('\r\n\r\n'.join(out))
