#!/usr/bin/env python3
"""Counter-flows of the never-ends review (identity changes and odd orders), written
from FreeSWITCH 1.10's source by editing derived flows (../derived) frame by frame, in
the captures' byte format. See README.txt ("Never-ends review")."""
import os, re, json
HERE = os.path.dirname(os.path.abspath(__file__))

def parse(name):
    data = open(os.path.join(HERE, name)).read()
    frames, pos = [], 0
    while pos < len(data):
        end = data.index('\n\n', pos)
        hdr = data[pos:end]
        m = re.search(r'^Content-Length: (\d+)$', hdr, re.M)
        cl = int(m.group(1)) if m else 0
        frames.append([hdr, data[end + 2:end + 2 + cl]])
        pos = end + 2 + cl
    return frames

def write(name, frames):
    out = []
    for hdr, body in frames:
        if re.search(r'^Content-Length: ', hdr, re.M):
            hdr = re.sub(r'^Content-Length: \d+$', 'Content-Length: %d' % len(body.encode()), hdr, flags=re.M)
        out.append(hdr + '\n\n' + body)
    open(os.path.join(HERE, name), 'w').write(''.join(out))

def seq(f):
    m = re.search(r'^Event-Sequence: (\d+)$', f[1], re.M)
    return int(m.group(1)) if m else None

def ts(f):
    m = re.search(r'^Event-Date-Timestamp: (\d+)$', f[1], re.M)
    return int(m.group(1)) if m else None

def setk(body, key, val):
    return re.sub(r'^%s: .*$' % re.escape(key), '%s: %s' % (key, val), body, count=1, flags=re.M)

def dropk(body, *keys):
    return '\n'.join(l for l in body.split('\n') if l.split(': ', 1)[0] not in keys)

def renumber(frames, first, t0=None):
    """Event-Sequence first, first+1, ... in list order; timestamps kept monotonic."""
    out, s, last = [], first, t0 or 0
    for h, b in frames:
        if seq([h, b]) is None:
            out.append([h, b])
            continue
        b = setk(b, 'Event-Sequence', str(s))
        t = ts([h, b])
        if t is not None and t <= last:
            t = last + 1000
            b = setk(b, 'Event-Date-Timestamp', str(t))
        last = t if t is not None else last
        out.append([h, b])
        s += 1
    return out

EV = 'Content-Length: 0\nContent-Type: text/event-plain'
DISC = ['Content-Type: text/disconnect-notice\nContent-Length: 0', '']
API = 'Content-Type: api/response\nContent-Length: 0'

def by_seq(frames):
    return {seq(f): list(f) for f in frames if seq(f) is not None}

def pre(frames):
    return [list(f) for f in frames if seq(f) is None][:3]

# The simple answered inbound call of ../derived/callee-early-media-answer: customer
# 1010 (a-leg C) calls 2100, 1000's leg (b-leg A) answers; the customer hangs up.
C, A = 'f450a4f8-2dbf-4b60-be28-2f7b354ed6fa', 'c9d0749d-eeaf-423a-a955-c29751b88454'

def bye(f):
    """sofia.c sofia_handle_sip_i_bye sets sip_term_cause before it hangs the leg up: on
    the leg's CHANNEL_HANGUP and every later event with variables (as the captures)."""
    f[1] = f[1].replace('variable_hangup_cause_q850: 16\n', 'variable_hangup_cause_q850: 16\nvariable_sip_term_cause: 16\n', 1)
    return f

def agent_hangs_up(base):
    """The same call, 1000 hanging up: the b-leg's thread ends it (HANGUP, HANGUP_COMPLETE,
    DESTROY: sofia_handle_sip_i_bye, switch_core_session_hangup_state, the b-leg's own
    CS_REPORTING/CS_DESTROY), while the a-leg's thread is still in the bridge loop; only once
    the a-leg's audio_bridge_thread sees the peer gone does it fire CHANNEL_UNBRIDGE
    (switch_ivr_bridge.c audio_bridge_thread end) and, hangup_after_bridge=true, hang the
    customer up itself (mod_dptools.c bridge_function: NORMAL_CLEARING, send_bye)."""
    s = by_seq(base)
    def sw(b, a, z):
        return b.replace(a, z)
    bh, bcs, bhc, bd = s[10022], s[10023], s[10025], s[10026]
    bhc[1] = sw(bhc[1], 'send_bye', 'recv_bye')
    bd[1] = sw(bd[1], 'send_bye', 'recv_bye')
    ub = s[10024]
    ub[1] = dropk(ub[1], 'variable_hangup_cause', 'variable_hangup_cause_q850', 'variable_sip_hangup_disposition')
    ub[1] = setk(setk(ub[1], 'Channel-Call-State', 'ACTIVE'), 'Answer-State', 'answered')
    ah, acs, ahc, ad = s[10020], s[10021], s[10027], s[10028]
    ahc[1] = sw(ahc[1], 'recv_bye', 'send_bye')
    ad[1] = sw(ad[1], 'recv_bye', 'send_bye')
    head = [s[k] for k in sorted(s) if k <= 10019]
    return head, [bye(bh), bcs, bye(bhc), bye(bd)], [ub, ah, acs, ahc, ad]

def show_row(uuid, direction, created, epoch, name, cid, dest, app, appdata, presence, callstate, state, extra=None):
    r = {"uuid": uuid, "direction": direction, "created": created, "created_epoch": epoch, "name": name,
         "state": state, "cid_name": cid, "cid_num": cid, "ip_addr": "127.0.0.1", "dest": dest,
         "application": app, "application_data": appdata, "dialplan": "XML", "context": "default",
         "read_codec": "PCMU", "read_rate": "8000", "read_bit_rate": "64000", "write_codec": "PCMU",
         "write_rate": "8000", "write_bit_rate": "64000", "secure": "", "hostname": "vm",
         "presence_id": presence, "presence_data": "", "accountcode": "", "callstate": callstate,
         "callee_name": "", "callee_num": "", "callee_direction": "", "call_uuid": C,
         "sent_callee_name": "", "sent_callee_num": "", "initial_cid_name": cid, "initial_cid_num": cid,
         "initial_ip_addr": "127.0.0.1", "initial_dest": dest, "initial_dialplan": "XML", "initial_context": "default"}
    r.update(extra or {})
    return r

CUST_ROW = dict(uuid=C, direction="inbound", created="2026-12-03 12:13:20", epoch="1796300000",
                name="sofia/internal/1010@127.0.0.1", cid="1010", dest="2100", app="bridge",
                appdata="user/1000@127.0.0.1", presence="1010@127.0.0.1", callstate="ACTIVE", state="CS_EXECUTE")
AGENT_ROW = dict(uuid=A, direction="outbound", created="2026-12-03 12:13:20", epoch="1796300000",
                 name="sofia/internal/1000-0x5591f1b07bf0@127.0.0.1%3A5261", cid="1010", dest="1000", app="",
                 appdata="", presence="1000@127.0.0.1", callstate="ACTIVE", state="CS_EXCHANGE_MEDIA",
                 extra={"callee_name": "Outbound Call", "callee_num": "1000", "callee_direction": "SEND"})

def both_rows():
    cust, agent = show_row(**CUST_ROW), show_row(**AGENT_ROW)
    call = dict(cust)
    for k, v in agent.items():
        call["b_" + k] = v
    call["call_created_epoch"] = "1796300003"
    return [[API, json.dumps({"row_count": 2, "rows": [cust, agent]})], [API, json.dumps({"row_count": 1, "rows": [call]})]]

# 1. agent-hangs-up-hangup-complete-before-unbridge
def complete_before_unbridge():
    base = parse('../derived/callee-early-media-answer.esl')
    head, b, a = agent_hangs_up(base)
    frames = pre(base) + head + renumber(b + a, 10020, ts(head[-1])) + [DISC]
    write('agent-hangs-up-hangup-complete-before-unbridge.esl', frames)

# 2. link-lost-after-customer-hangup-before-complete
def link_lost_after_hangup():
    base = parse('../derived/callee-early-media-answer.esl')
    s = by_seq(base)
    bye(s[10020])
    head = [s[k] for k in sorted(s) if k <= 10021]
    frames = pre(base) + head + [DISC] + pre(base) + [[API, '{"row_count": 0}'], [API, '{"row_count": 0}']] + [DISC]
    write('link-lost-after-customer-hangup-before-complete.esl', frames)

# 3. link-lost-after-agent-hangup-customer-still-up
def link_lost_after_agent_hangup():
    base = parse('../derived/callee-early-media-answer.esl')
    head, b, a = agent_hangs_up(base)
    seqd = renumber(b + a, 10020, ts(head[-1]))
    cust = show_row(**CUST_ROW)
    frames = (pre(base) + head + seqd[:2] + [DISC] + pre(base) +
              [[API, json.dumps({"row_count": 1, "rows": [cust]})], [API, '{"row_count": 0}']] + seqd[5:] + [DISC])
    write('link-lost-after-agent-hangup-customer-still-up.esl', frames)

# 4. sidecar-connects-answered-call-agent-hangs-up
def sidecar_connects_answered():
    base = parse('../derived/callee-early-media-answer.esl')
    head, b, a = agent_hangs_up(base)
    frames = pre(base) + both_rows() + renumber(b + a, 10020, ts(head[-1])) + [DISC]
    write('sidecar-connects-answered-call-agent-hangs-up.esl', frames)

if __name__ == '__main__':
    complete_before_unbridge()
    link_lost_after_hangup()
    link_lost_after_agent_hangup()
    sidecar_connects_answered()

# 5. uuid-transfer-customer-while-agent-rings-to-ring-group
def transfer_while_ringing():
    """../derived/uuid-transfer-to-ring-group with the uuid_transfer (bl_xfer 2110) sent
    while 1000 still rings: switch_ivr_session_transfer sets CF_TRANSFER on the customer,
    switch_channel_ready(caller) turns false, switch_ivr_originate's loop takes IDX_CANCEL
    and hangs 1000's leg up ORIGINATOR_CANCEL (send_cancel); the customer, never answered,
    runs 2110 (user/1001,user/1002) with early media; 1002 answers, the bridge answers the
    customer (CHANNEL_ANSWER), 1001 ends LOSE_RACE; the customer hangs up."""
    base = parse('../derived/uuid-transfer-to-ring-group.esl')
    s = by_seq(base)
    CU, AG = 'f706a28f-a069-47d6-a915-44551255d7a8', '8b7712e3'
    OLD_ANS = '1796300002040000'
    def cancelled(f, callstate_line):
        b = f[1]
        b = b.replace('NORMAL_CLEARING', 'ORIGINATOR_CANCEL').replace('variable_hangup_cause_q850: 16', 'variable_hangup_cause_q850: 487')
        b = b.replace('send_bye', 'send_cancel')
        b = re.sub(r'^(Caller|Other-Leg)-Channel-Answered-Time: \d+$', r'\1-Channel-Answered-Time: 0', b, flags=re.M)
        b = dropk(b, 'variable_bridge_uuid', 'variable_bridge_channel', 'variable_last_bridge_to', 'variable_signal_bond',
                  'variable_last_sent_callee_id_name', 'variable_last_sent_callee_id_number')
        if callstate_line:
            b = re.sub(r'^Channel-Call-State: ACTIVE$', 'Channel-Call-State: RINGING', b, flags=re.M)
        b = re.sub(r'^Original-Channel-Call-State: ACTIVE$', 'Original-Channel-Call-State: RINGING', b, flags=re.M)
        return [f[0], b]
    head = [s[k] for k in sorted(s) if k <= 10014]
    a_hup = [cancelled(s[10020], True), cancelled(s[10021], True), cancelled(s[10025], False), cancelled(s[10026], False)]
    mid = [s[k] for k in sorted(s) if 10027 <= k <= 10045]
    ans_t = ts(s[10046]) - 2000
    def early(f):
        b = f[1]
        if re.search(r'^Unique-ID: ' + CU, b, re.M):
            b = setk(b, 'Answer-State', 'early')
            b = re.sub(r'^Channel-Call-State: ACTIVE$', 'Channel-Call-State: EARLY', b, flags=re.M)
        b = b.replace('Channel-Answered-Time: ' + OLD_ANS, 'Channel-Answered-Time: 0')
        return [f[0], b]
    mid = [early(f) for f in mid]
    ans = s[10017]
    ab = ans[1]
    ab = setk(ab, 'Event-Date-Timestamp', str(ans_t))
    ab = ab.replace('Caller-Destination-Number: 2100', 'Caller-Destination-Number: 2110')
    ts_line = [l for l in s[10046][1].split('\n') if l.startswith('Caller-Transfer-Source: ')][0]
    ab = ab.replace('\nCaller-Unique-ID: ', '\n' + ts_line + '\nCaller-Unique-ID: ', 1)
    ab = ab.replace('Channel-Answered-Time: ' + OLD_ANS, 'Channel-Answered-Time: %d' % ans_t)
    ab = dropk(ab, 'variable_bridge_uuid', 'variable_bridge_channel')
    tail = []
    for k in sorted(s):
        if k >= 10046:
            f = list(s[k])
            f[1] = f[1].replace('Channel-Answered-Time: ' + OLD_ANS, 'Channel-Answered-Time: %d' % ans_t)
            if k == 10046:
                f[1] = f[1].replace('Original-Channel-Call-State: ACTIVE', 'Original-Channel-Call-State: EARLY')
            tail.append(f)
    frames = pre(base) + head + renumber(a_hup + mid + [[ans[0], ab]] + tail, 10015, ts(head[-1])) + [DISC]
    write('uuid-transfer-customer-while-agent-rings-to-ring-group.esl', frames)

if __name__ == '__main__':
    transfer_while_ringing()

# 6. uuid-bridge-two-answered-calls-customers-joined
C2, A2 = 'a7c3e1d2-5b6f-4a8e-9c0d-1e2f3a4b5c6d', 'b8d4f2e3-6c7a-4b9f-8d1e-2f3a4b5c6d7e'
def second_call(f, shift):
    """The same call from 1011 to 1001 (another customer, another agent), shift us later."""
    b = f[1].replace(C, C2).replace(A, A2).replace('0x5591f1b07bf0', '0x5566249b9bf0')
    b = re.sub(r'(?<![0-9A-Za-z])1010(?![0-9])', '1011', b)
    b = re.sub(r'(?<![0-9A-Za-z])1000(?![0-9])', '1001', b)
    b = b.replace('750d8424e79640ca', '750d8424e79640cb').replace('59b1f255aa754451', '59b1f255aa754452')
    b = re.sub(r'^((?:Event-Date-Timestamp|Caller-[A-Za-z-]*-Time|Other-Leg-[A-Za-z-]*-Time): )(\d+)$',
               lambda m: m.group(1) + (str(int(m.group(2)) + shift) if int(m.group(2)) > 0 else '0'), b, flags=re.M)
    return [f[0], b]

def block(body, prefix):
    return [l for l in body.split('\n') if l.startswith(prefix)]

def rebridge(body, old_peer_block, new_peer_caller_block):
    lines = body.split('\n')
    out, done = [], False
    for l in lines:
        if l.startswith('Other-Leg-'):
            if not done:
                out += ['Other-Leg-' + x[len('Caller-'):] for x in new_peer_caller_block if not x.startswith('Caller-Profile-Index')]
                done = True
            continue
        out.append(l)
    return '\n'.join(out)

def uuid_bridge_two_calls():
    """1010 talks to 1000 (call 1), 1011 to 1001 (call 2); the CRM sends uuid_bridge
    <1010's leg> <1011's leg>. switch_ivr_uuid_bridge (switch_ivr_bridge.c) sets
    transfer_source <t>:<uuid>:uuid_br:<other> and CF_TRANSFER on both customers' legs: each
    one's bridge loop ends (CHANNEL_UNBRIDGE from each a-leg), both run the uuid_bridge
    pseudo-application (CHANNEL_EXECUTE uuid_bridge), the originator fires CHANNEL_BRIDGE
    1010<->1011. The agents' legs, left in CS_EXCHANGE_MEDIA without a peer, are hung up
    by the switch (audio_bridge_on_exchange_media: answered, not transferred:
    NORMAL_CLEARING, send_bye). 1010 hangs up; 1011's leg, the uuid_bridge originatee, is
    hung up by the switch the same way (NORMAL_CLEARING, send_bye)."""
    base = parse('../derived/callee-early-media-answer.esl')
    s = by_seq(base)
    call1 = [s[k] for k in sorted(s) if k <= 10019]
    s2 = {k: second_call(f, 5000000) for k, f in s.items()}
    call2 = [s2[k] for k in sorted(s2) if k <= 10019]
    T = 1796300010000000
    def at(f, t, name=None):
        b = setk(f[1], 'Event-Date-Timestamp', str(t))
        if name:
            b = setk(b, 'Event-Name', name)
        return [f[0], b]
    def xfer_src(b, me, other):
        return b.replace('\n\n', '\nvariable_transfer_source: 1796300010%%3A%s%%3Auuid_br%%3A%s\n\n' % (me, other), 1) if b.endswith('\n\n') else b
    c1_caller = block(s[10019][1], 'Caller-')
    c2_caller = block(s2[10019][1], 'Caller-')
    ub1 = at(s[10019], T, 'CHANNEL_UNBRIDGE'); ub1[1] = xfer_src(ub1[1], C, C2)
    ub2 = at(s2[10019], T + 1000, 'CHANNEL_UNBRIDGE'); ub2[1] = xfer_src(ub2[1], C2, C)
    def execute(f, t, me, other, app_uuid):
        b = at(f, t, 'CHANNEL_EXECUTE')[1]
        b = dropk(b, 'Bridge-A-Unique-ID', 'Bridge-B-Unique-ID')
        b = b.replace('\nvariable_uuid: ', '\nApplication: uuid_bridge\nApplication-Data: %s\nApplication-UUID: %s\nvariable_uuid: ' % (other, app_uuid), 1)
        return [f[0], xfer_src(b, me, other)]
    ex2 = execute(s2[10019], T + 3000, C2, C, 'd1e2f3a4-0b1c-4d2e-8f3a-4b5c6d7e8f90')
    ex1 = execute(s[10019], T + 4000, C, C2, 'e2f3a4b5-1c2d-4e3f-9a4b-5c6d7e8f9a01')
    br = at(s[10019], T + 6000)
    br[1] = rebridge(br[1].replace('Bridge-B-Unique-ID: ' + A, 'Bridge-B-Unique-ID: ' + C2)
                     .replace('variable_bridge_uuid: ' + A, 'variable_bridge_uuid: ' + C2)
                     .replace('variable_bridge_channel: sofia/internal/1000-0x5591f1b07bf0@127.0.0.1%3A5261', 'variable_bridge_channel: sofia/internal/1011@127.0.0.1'),
                     None, c2_caller)
    br[1] = xfer_src(br[1], C, C2)
    def agent_gone(ss, t):
        return [at(ss[10022], t), at(ss[10023], t + 2000), at(ss[10025], t + 6000), at(ss[10026], t + 8000)]
    merge = [ub1, ub2, ex2, ex1, br] + agent_gone(s, T + 10000) + agent_gone(s2, T + 12000)
    T2 = 1796300020000000
    def peer_c2(f):
        b = f[1].replace('variable_bridge_uuid: ' + A, 'variable_bridge_uuid: ' + C2).replace('Bridge-B-Unique-ID: ' + A, 'Bridge-B-Unique-ID: ' + C2)
        b = b.replace('variable_bridge_channel: sofia/internal/1000-0x5591f1b07bf0@127.0.0.1%3A5261', 'variable_bridge_channel: sofia/internal/1011@127.0.0.1')
        if 'Other-Leg-' in b:
            b = rebridge(b, None, c2_caller)
        return [f[0], xfer_src(b, C, C2)]
    def peer_c1(f):
        b = f[1].replace('variable_bridge_uuid: ' + A2, 'variable_bridge_uuid: ' + C).replace('recv_bye', 'send_bye')
        b = b.replace('variable_bridge_channel: sofia/internal/1001-0x5566249b9bf0@127.0.0.1%3A5261', 'variable_bridge_channel: sofia/internal/1010@127.0.0.1')
        if 'Other-Leg-' in b:
            b = rebridge(b, None, c1_caller)
        return [f[0], xfer_src(b, C2, C)]
    end = [peer_c2(bye(at(s[10020], T2))), at(s[10021], T2 + 2000),
           peer_c1(at(s2[10020], T2 + 4000)), at(s2[10021], T2 + 6000),
           peer_c2(at(s[10024], T2 + 8000)),
           peer_c1(at(s2[10027], T2 + 10000)), peer_c1(at(s2[10028], T2 + 12000)),
           peer_c2(bye(at(s[10027], T2 + 14000))), peer_c2(bye(at(s[10028], T2 + 16000)))]
    frames = pre(base) + call1 + renumber(call2 + merge + end, 10020, ts(call1[-1])) + [DISC]
    write('uuid-bridge-two-answered-calls-customers-joined.esl', frames)

if __name__ == '__main__':
    uuid_bridge_two_calls()

# 7. agent-answers-and-hangs-up-before-customer-answered
def agent_gone_before_customer_answer():
    """1000 answers and hangs up at once: switch_ivr_originate sees the answer and, in the
    customer's thread, answers the customer (CHANNEL_ANSWER) while 1000's BYE is handled on
    its own thread (sofia_handle_sip_i_bye; HANGUP, HANGUP_COMPLETE, DESTROY). The peer is no
    longer ready: switch_ivr_multi_threaded_bridge bridges nothing (no CHANNEL_BRIDGE) and,
    hangup_after_bridge=true, the customer is hung up with the peer's cause (send_bye)."""
    base = parse('../derived/callee-early-media-answer.esl')
    s = by_seq(base)
    head = [s[k] for k in sorted(s) if k <= 10016]
    b = [bye(s[10022]), s[10023], bye(s[10025]), bye(s[10026])]
    for f in b[2:]:
        f[1] = f[1].replace('send_bye', 'recv_bye')
    nob = lambda f: [f[0], dropk(f[1], 'variable_bridge_uuid', 'variable_bridge_channel').replace('recv_bye', 'send_bye')]
    a = [s[10017], s[10018]] + [nob(s[k]) for k in (10020, 10021, 10027, 10028)]
    b = [[f[0], dropk(f[1], 'variable_bridge_uuid', 'variable_bridge_channel')] for f in b]
    frames = pre(base) + head + renumber(b + a, 10017, ts(head[-1])) + [DISC]
    write('agent-answers-and-hangs-up-before-customer-answered.esl', frames)

if __name__ == '__main__':
    agent_gone_before_customer_answer()

# 8. uuid-transfer-both-legs-to-conference-customer-leaves-first
def transfer_both_to_conference():
    """uuid_transfer <1010's leg> -both 3000 (mod_commands.c transfer_function "-both":
    CF_REDIRECT on both, switch_ivr_session_transfer of the bridged b-leg (1000's) and of
    the customer's leg to 3000, default's nb_conferences: answer, conference
    3000-127.0.0.1@default). The customer's bridge loop ends (CHANNEL_UNBRIDGE), each leg
    runs the dialplan and joins the room (conference::maintenance add-member,
    conference_member.c conference_member_add). 1010 leaves (del-member, BYE), then 1000
    alone (del-member, BYE)."""
    base = parse('../derived/callee-early-media-answer.esl')
    s = by_seq(base)
    head = [s[k] for k in sorted(s) if k <= 10019]
    T = 1796300010000000
    def moved(f, me, t, name=None):
        b = setk(f[1], 'Event-Date-Timestamp', str(t))
        if name:
            b = setk(b, 'Event-Name', name)
        b = re.sub(r'^Caller-Destination-Number: .*$', 'Caller-Destination-Number: 3000', b, flags=re.M)
        b = b.replace('\nCaller-Unique-ID: ', '\nCaller-Transfer-Source: 1796300010%%3A%s%%3Abl_xfer%%3A3000/default/XML\nCaller-Unique-ID: ' % me, 1)
        b = re.sub(r'^Caller-Channel-Transfer-Time: 0$', 'Caller-Channel-Transfer-Time: %d' % T, b, flags=re.M)
        b = dropk(b, 'Bridge-A-Unique-ID', 'Bridge-B-Unique-ID', 'Application', 'Application-Data', 'Application-UUID',
                  'variable_bridge_uuid', 'variable_bridge_channel')
        if b.endswith('\n\n'):
            b = b[:-1] + 'variable_transfer_source: 1796300010%%3A%s%%3Abl_xfer%%3A3000/default/XML\n\n' % me
        return [f[0], b]
    def execute(f, me, t, app, data, app_uuid, complete=False):
        g = moved(f, me, t, 'CHANNEL_EXECUTE_COMPLETE' if complete else 'CHANNEL_EXECUTE')
        g[1] = setk(g[1], 'Channel-State', 'CS_EXECUTE')
        extra = 'Application: %s\n' % app + ('Application-Data: %s\n' % data if data else '') + 'Application-UUID: %s\n' % app_uuid
        if complete:
            extra += 'Application-Response: _none_\n'
        g[1] = g[1].replace('\nvariable_uuid: ', '\n' + extra + 'variable_uuid: ', 1)
        return g
    CONF = ('Conference-Name: 3000-127.0.0.1\nConference-Domain: default\nConference-Size: %d\nConference-Ghosts: 0\n'
            'Conference-Profile-Name: default\nConference-Unique-ID: 5d0e6a4f-2b7c-4e1d-9a8f-3c2b1a0f9e8d\nFloor: false\n'
            'Video: false\nHear: true\nSee: true\nSpeak: true\nTalking: false\nMute-Detect: false\nMember-ID: %d\n'
            'Member-Type: member\nMember-Ghost: false\nEnergy-Level: 100\nCurrent-Energy: 0\nAction: %s\n\n')
    def member(f, me, t, action, size, mid, hangup=False):
        g = moved(f, me, t, 'CUSTOM')
        b = g[1].replace('Event-Name: CUSTOM\n', 'Event-Name: CUSTOM\nEvent-Subclass: conference%3A%3Amaintenance\n', 1)
        b = dropk(b, 'Event-Calling-File', 'Event-Calling-Function', 'Event-Calling-Line-Number', 'Hangup-Cause',
                  'variable_hangup_cause', 'variable_hangup_cause_q850', 'variable_sip_hangup_disposition', 'variable_sip_term_cause')
        b = setk(setk(b, 'Channel-State', 'CS_EXECUTE'), 'Channel-Call-State', 'ACTIVE')
        b = setk(b, 'Answer-State', 'hangup' if hangup else 'answered')
        fn = 'conference_member_del' if action == 'del-member' else 'conference_member_add'
        hup = 'Hangup-Cause: NORMAL_CLEARING\n' if hangup else ''
        b = b.replace('\nvariable_uuid: ', '\n' + hup + 'variable_uuid: ', 1) if hangup else b
        if hangup:
            b = b[:-1] + 'variable_hangup_cause: NORMAL_CLEARING\nvariable_hangup_cause_q850: 16\nvariable_sip_term_cause: 16\n\n'
        b = b[:-1] + 'Event-Calling-File: conference_member.c\nEvent-Calling-Function: %s\nEvent-Calling-Line-Number: 1\n' % fn + CONF % (size, mid, action)
        return [g[0], b]
    ub = moved(s[10019], C, T, 'CHANNEL_UNBRIDGE')
    ub[1] = ub[1].replace('Event-Name: CHANNEL_UNBRIDGE\n', 'Event-Name: CHANNEL_UNBRIDGE\n', 1)
    ub[1] = s[10019][1].split('\nChannel-State')[0].replace('CHANNEL_BRIDGE', 'CHANNEL_UNBRIDGE') + '\nChannel-State' + ub[1].split('\nChannel-State', 1)[1]
    ub[1] = setk(ub[1], 'Event-Date-Timestamp', str(T))
    aw = s[10015]
    xfer = [ub,
            execute(aw, A, T + 2000, 'answer', None, '0a1b2c3d-0001-4e5f-8a9b-0c1d2e3f4a5b'),
            execute(aw, A, T + 3000, 'answer', None, '0a1b2c3d-0001-4e5f-8a9b-0c1d2e3f4a5b', True),
            execute(aw, A, T + 4000, 'conference', '3000-127.0.0.1@default', '0a1b2c3d-0002-4e5f-8a9b-0c1d2e3f4a5b'),
            member(aw, A, T + 6000, 'add-member', 1, 1),
            execute(s[10007], C, T + 8000, 'answer', None, '0a1b2c3d-0003-4e5f-8a9b-0c1d2e3f4a5b'),
            execute(s[10007], C, T + 9000, 'answer', None, '0a1b2c3d-0003-4e5f-8a9b-0c1d2e3f4a5b', True),
            execute(s[10007], C, T + 10000, 'conference', '3000-127.0.0.1@default', '0a1b2c3d-0004-4e5f-8a9b-0c1d2e3f4a5b'),
            member(s[10007], C, T + 12000, 'add-member', 2, 2)]
    T2 = 1796300020000000
    cl = [member(s[10007], C, T2, 'del-member', 1, 2, True),
          bye(moved(s[10020], C, T2 + 2000)), moved(s[10021], C, T2 + 3000),
          bye(moved(s[10027], C, T2 + 5000)), bye(moved(s[10028], C, T2 + 6000))]
    T3 = 1796300030000000
    al = [member(aw, A, T3, 'del-member', 0, 1, True),
          bye(moved(s[10022], A, T3 + 2000)), moved(s[10023], A, T3 + 3000),
          bye(moved(s[10025], A, T3 + 5000)), bye(moved(s[10026], A, T3 + 6000))]
    for f in al[3:]:
        f[1] = f[1].replace('send_bye', 'recv_bye')
    for f in cl + al:
        f[1] = setk(f[1], 'Channel-State', 'CS_EXECUTE') if 'CHANNEL_HANGUP\n' in f[1] else f[1]
    frames = pre(base) + head + renumber(xfer + cl + al, 10020, ts(head[-1])) + [DISC]
    write('uuid-transfer-both-legs-to-conference-customer-leaves-first.esl', frames)

if __name__ == '__main__':
    transfer_both_to_conference()

# 9. link-lost-customer-cancels-while-ringing
def link_lost_cancel():
    """The capture ../sip/sip-caller-cancels-while-ringing cut right after the customer's
    CHANNEL_HANGUP (recv_cancel, ORIGINATOR_CANCEL: sofia_handle_sip_i_cancel); the link is
    lost before 1000's leg's hangup (switch_ivr_originate IDX_CANCEL) and any
    HANGUP_COMPLETE; the resync's show channels / show calls list nothing."""
    base = parse('../sip/sip-caller-cancels-while-ringing.esl')
    head = [list(f) for f in base if seq(f) is not None and seq(f) <= 630]
    frames = pre(base) + head + [DISC] + pre(base) + [[API, '{"row_count": 0}'], [API, '{"row_count": 0}']] + [DISC]
    write('link-lost-customer-cancels-while-ringing.esl', frames)

if __name__ == '__main__':
    link_lost_cancel()
