# Builds busy-then-forward-to-mobile-caller-hangs-up.ami from the real
# capture ../sip/sip-inbound-busy.ami: DID 200 -> Dial(PJSIP/100) -> 100
# rejects (486, BUSY); the dialplan forwards on busy to 100's mobile
# (priority 3: Dial(PJSIP/trunk/sip:5550100@...), as FreePBX's Call
# Forward Busy or an extension's busy destination set to a mobile). The
# mobile rings ~5 s; the customer hangs up (CANCEL, cause 127) while it
# rings, as in ../sip/sip-caller-cancels-while-ringing.ami.
import re
raw = open('../sip/sip-inbound-busy.ami', newline='').read()
fr = raw.split('\r\n\r\n')

def ev(t, name, fields):
    return 'Event: %s\r\nPrivilege: call,all\r\nTimestamp: %.6f\r\n' % (name, t) + '\r\n'.join(fields)

def chan(p, name, uid, ctx, exten, prio, state, num, cname):
    st = {'Up': 6, 'Ring': 4, 'Ringing': 5, 'Down': 0}[state]
    return ['%sChannel: %s' % (p, name), '%sChannelState: %d' % (p, st), '%sChannelStateDesc: %s' % (p, state),
            '%sCallerIDNum: %s' % (p, num), '%sCallerIDName: %s' % (p, cname), '%sConnectedLineNum: <unknown>' % p,
            '%sConnectedLineName: <unknown>' % p, '%sLanguage: en' % p, '%sAccountCode: ' % p, '%sContext: %s' % (p, ctx),
            '%sExten: %s' % (p, exten), '%sPriority: %d' % (p, prio), '%sUniqueid: %s' % (p, uid), '%sLinkedid: 1796234224.4' % p]

cust = lambda prio, state='Ring': chan('', 'PJSIP/trunk-00000004', '1796234224.4', 'from-trunk', '200', prio, state, '5551234', 'Customer')
mob = lambda p, state, prio=1: chan(p, 'PJSIP/trunk-00000006', '1796234226.6', 'from-trunk', 's', prio, state, '5550100', '<unknown>')
t = 1796234226.684853
add = [
    ev(t, 'Newexten', cust(3) + ['Extension: 200', 'Application: Dial', 'AppData: PJSIP/trunk/sip:5550100@127.0.0.1:5090,30']),
    ev(t + 0.001, 'Newchannel', mob('', 'Down')),
    ev(t + 0.002, 'DialBegin', cust(3) + mob('Dest', 'Down') + ['DialString: trunk/sip:5550100@127.0.0.1:5090']),
    ev(t + 0.050, 'Newstate', mob('', 'Ringing')),
    ev(t + 0.051, 'DialState', cust(3) + mob('Dest', 'Ringing') + ['DialStatus: RINGING']),
    ev(t + 5.0, 'HangupRequest', cust(3) + ['Cause: 127']),
    ev(t + 5.001, 'DialEnd', cust(3) + mob('Dest', 'Ringing') + ['DialStatus: CANCEL']),
    ev(t + 5.002, 'SoftHangupRequest', cust(3) + ['Cause: 16']),
    ev(t + 5.003, 'Hangup', cust(3) + ['Cause: 127', 'Cause-txt: Interworking, unspecified']),
    ev(t + 5.004, 'Hangup', mob('', 'Ringing') + ['Cause: 127', 'Cause-txt: Interworking, unspecified']),
]
out = fr[:37] + add + fr[43:]
open('busy-then-forward-to-mobile-caller-hangs-up.ami', 'w', newline='').write('\r\n\r\n'.join(out))
