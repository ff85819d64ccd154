#!/usr/bin/env python3
"""Counter-flows of the fifth review (rev5b), written from FreeSWITCH 1.10's source by
editing derived flows (../derived) frame by frame; every frame keeps the captures' byte
format (Content-Length counts the event body with its closing blank line). See README.txt."""
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

def setk(body, key, val):
    return re.sub(r'^%s: .*$' % re.escape(key), '%s: %s' % (key, val), body, count=1, flags=re.M)

EV = 'Content-Length: 0\nContent-Type: text/event-plain'
DISC = ['Content-Type: text/disconnect-notice\nContent-Length: 0', '']
def handshake(base):
    return [f for f in base[:3]]

# 1. callback-customer-first-refused-{404,486,503}
def callback_refused():
    base = parse('../derived/callback-originate-customer-first-then-agent.esl')
    head = [f for f in base if seq(f) is None][:3] + [f for f in base if seq(f) and seq(f) <= 10005]
    ring = [f for f in base if seq(f) == 10005][0][1]
    lines = [l for l in ring.rstrip('\n').split('\n') if not l.startswith('Original-Channel-Call-State')]
    job = [f for f in base if 'Event-Name: BACKGROUND_JOB' in f[1]][0][1]
    def ev(name, sq, ts, callstate, extra):
        out = []
        for l in lines:
            k = l.split(': ', 1)[0]
            if k == 'Event-Name': l = 'Event-Name: ' + name
            elif k == 'Event-Sequence': l = 'Event-Sequence: %d' % sq
            elif k == 'Event-Date-Timestamp': l = 'Event-Date-Timestamp: %d' % ts
            elif k == 'Answer-State': l = 'Answer-State: hangup'
            elif k == 'Channel-Call-State' and callstate: l = 'Channel-Call-State: ' + callstate
            elif k == 'Caller-Channel-Hangup-Time' and name != 'CHANNEL_HANGUP': l = 'Caller-Channel-Hangup-Time: 1796300003000000'
            out.append(l)
        return [EV, '\n'.join(out + list(extra)) + '\n\n']
    for name, status, phrase, cause, q850 in [('404', 404, 'Not%20Found', 'UNALLOCATED_NUMBER', 1),
                                              ('486', 486, 'Busy%20Here', 'USER_BUSY', 17),
                                              ('503', 503, 'Service%20Unavailable', 'NORMAL_TEMPORARY_FAILURE', 41)]:
        sq, ts = 10006, 1796300003002000
        v = ['variable_uuid: fb3ac9f8-f32f-57e0-955f-0282632e4f4c', 'variable_call_uuid: fb3ac9f8-f32f-57e0-955f-0282632e4f4c',
             'variable_sip_call_id: 0056fe48fb6d5394', 'variable_origination_caller_id_number: %2B4930999000',
             'variable_origination_caller_id_name: ACME', 'variable_sip_gateway_name: gw1', 'variable_sip_profile_name: external']
        term = ['variable_sip_term_status: %d' % status, 'variable_sip_invite_failure_status: %d' % status,
                'variable_sip_invite_failure_phrase: ' + phrase, 'variable_hangup_cause: ' + cause, 'variable_hangup_cause_q850: %d' % q850]
        res = '-ERR %s\n' % cause
        jb = setk(setk(job, 'Event-Sequence', str(sq + 3)), 'Event-Date-Timestamp', str(ts + 8000))
        jb = re.sub(r'Content-Length: \d+\n\n.*', 'Content-Length: %d\n\n%s' % (len(res), res), jb, flags=re.S)
        frames = head + [
            ev('CHANNEL_HANGUP', sq, ts, None, ['Hangup-Cause: ' + cause] + v + term),
            ev('CHANNEL_CALLSTATE', sq + 1, ts + 2000, 'HANGUP', ['Original-Channel-Call-State: RINGING']),
            [EV, jb],
            ev('CHANNEL_HANGUP_COMPLETE', sq + 4, ts + 16000, 'HANGUP', ['Hangup-Cause: ' + cause] + v + ['variable_sip_hangup_disposition: recv_refuse'] + term),
            ev('CHANNEL_DESTROY', sq + 5, ts + 18000, 'HANGUP', v + ['variable_sip_hangup_disposition: recv_refuse'] + term),
            DISC]
        write('callback-customer-first-refused-%s.esl' % name, frames)

# 2. outbound-gateway-carrier-408-after-ringing
def carrier_408():
    GW = 'a0b142ee-849d-45bd-a936-0f2cc9333a96'
    frames = parse('../derived/outbound-gateway-early-media-noanswer.esl')
    for f in frames:
        if seq(f) is None: continue
        b = f[1].replace('NO_ANSWER', 'RECOVERY_ON_TIMER_EXPIRE').replace('DIALSTATUS: NOANSWER', 'DIALSTATUS: RECOVERY_ON_TIMER_EXPIRE')
        b = b.replace('variable_hangup_cause_q850: 19', 'variable_hangup_cause_q850: 102')
        if re.search(r'^Unique-ID: ' + GW, b, re.M):
            b = b.replace('send_cancel', 'recv_refuse')
            if 'variable_hangup_cause: ' in b or 'Event-Name: CHANNEL_DESTROY' in b:
                b = b.rstrip('\n') + '\nvariable_sip_term_status: 408\nvariable_sip_invite_failure_status: 408\nvariable_sip_invite_failure_phrase: Request%20Timeout\n\n'
        elif 'variable_sip_hangup_disposition: send_refuse' in b:
            b = b.rstrip('\n') + '\nvariable_originate_failed_cause: RECOVERY_ON_TIMER_EXPIRE\nvariable_sip_term_status: 504\n\n'
        f[1] = b
    write('outbound-gateway-carrier-408-after-ringing.esl', frames)

# 3. click-to-call-carrier-404-failover-second-answers
def failover_404():
    frames = parse('../derived/click-to-call-carrier-failover.esl')
    for f in frames:
        if seq(f) and 'Channel-Name: sofia/gateway/gw1/' in f[1]:
            f[1] = (f[1].replace('NORMAL_TEMPORARY_FAILURE', 'UNALLOCATED_NUMBER').replace('variable_hangup_cause_q850: 41', 'variable_hangup_cause_q850: 1')
                    .replace('status: 503', 'status: 404').replace('Service%20Unavailable', 'Not%20Found'))
    write('click-to-call-carrier-404-failover-second-answers.esl', frames)

# 4. link-lost-intercept-supervisor-takes-over
def intercept_link_lost():
    base = parse('../derived/intercept-bleg-supervisor-takes-over.esl')
    pre = [f for f in base if seq(f) is None][:3]
    head = [f for f in base if seq(f) and seq(f) <= 10019]
    tail = [f for f in base if seq(f) and seq(f) >= 10036]
    common = {"dialplan": "XML", "context": "default", "read_codec": "PCMU", "read_rate": "8000", "read_bit_rate": "64000",
              "write_codec": "PCMU", "write_rate": "8000", "write_bit_rate": "64000", "secure": "", "hostname": "vm",
              "presence_data": "", "accountcode": "", "callstate": "ACTIVE"}
    def row(uuid, created, epoch, name, cid, dest, appdata, presence):
        r = {"uuid": uuid, "direction": "inbound", "created": created, "created_epoch": epoch, "name": name,
             "state": "CS_EXCHANGE_MEDIA", "cid_name": cid, "cid_num": cid, "ip_addr": "127.0.0.1", "dest": dest,
             "application": "uuid_bridge", "application_data": appdata}
        r.update(common)
        r.update({"presence_id": presence, "callee_name": "", "callee_num": "", "callee_direction": "", "call_uuid": uuid,
                  "sent_callee_name": "", "sent_callee_num": "", "initial_cid_name": cid, "initial_cid_num": cid,
                  "initial_ip_addr": "127.0.0.1", "initial_dest": dest, "initial_dialplan": "XML", "initial_context": "default"})
        return r
    C, S = "ef6a1344-751d-5b28-b89d-9eb6f1ec88ae", "627536b1-a0f2-5282-82a5-f433fac2c8fc"
    cust = row(C, "2026-12-03 12:13:20", "1796300000", "sofia/internal/1010@127.0.0.1", "1010", "2100", S, "")
    sup = row(S, "2026-12-03 12:13:28", "1796300008", "sofia/internal/1002@127.0.0.1", "1002", "2199", C, "1002@127.0.0.1")
    call = dict(sup)
    for k, v in cust.items():
        call["b_" + k] = v
    call["call_created_epoch"] = "1796300008"
    api = 'Content-Type: api/response\nContent-Length: 0'
    frames = pre + head + [DISC] + pre + [[api, json.dumps({"row_count": 2, "rows": [cust, sup]})],
                                          [api, json.dumps({"row_count": 1, "rows": [call]})]] + tail + [DISC]
    write('link-lost-intercept-supervisor-takes-over.esl', frames)

# 5. dialler-customer-first-park-uuid-bridge-agent
def dialler():
    cb = parse('../derived/callback-originate-customer-first-then-agent.esl')
    ub = parse('../derived/uuid-bridge-parked-customer-to-agent-customer-first.esl')
    OLD, NEW = '031939be-4be7-4178-9ea4-dbc74fadabd7', 'fb3ac9f8-f32f-57e0-955f-0282632e4f4c'
    tl = [f for f in cb if seq(f) == 10007][0][1].rstrip('\n').split('\n')
    gw_caller = [l for l in tl if l.startswith('Caller-')]
    gw_top = {l.split(': ', 1)[0]: l for l in tl if l.split(': ', 1)[0] in ('Channel-Name', 'Unique-ID', 'Call-Direction', 'Presence-Call-Direction', 'Channel-Call-UUID')}
    gw_vars = ['variable_uuid: ' + NEW, 'variable_call_uuid: ' + NEW, 'variable_sip_call_id: 0056fe48fb6d5394',
               'variable_origination_caller_id_number: %2B4930999000', 'variable_origination_caller_id_name: ACME']
    IDVARS = ('variable_uuid', 'variable_call_uuid', 'variable_sip_call_id', 'variable_domain_name', 'variable_sip_auth_username', 'variable_user_name')
    AGENT_CID = ('Caller-Username', 'Caller-Caller-ID-Name', 'Caller-Caller-ID-Number', 'Caller-Orig-Caller-ID-Name', 'Caller-Orig-Caller-ID-Number', 'Caller-ANI')
    def rewrite(body):
        cust = re.search(r'^Unique-ID: ' + OLD + '$', body, re.M) is not None
        evpart, sep, rest = body.partition('\n\n')
        lines = evpart.split('\n')
        out, i = [], 0
        while i < len(lines):
            l = lines[i]
            k = l.split(': ', 1)[0]
            P = 'Caller-' if k.startswith('Caller-') else 'Other-Leg-' if k.startswith('Other-Leg-') else None
            if P:
                j = i
                while j < len(lines) and lines[j].startswith(P): j += 1
                blk = lines[i:j]
                if P + 'Unique-ID: ' + OLD in blk:
                    ts = [x for x in blk if x.startswith(P + 'Transfer-Source')]
                    for x in gw_caller:
                        if P == 'Other-Leg-' and x.startswith('Caller-Profile-Index'): continue
                        if x.startswith('Caller-Unique-ID'): out += ts
                        out.append(P + x[len('Caller-'):])
                elif P == 'Caller-':
                    # 1000's leg: the dialler presents the customer's number to the phone
                    out += [x.split(': ', 1)[0] + ': %2B4930123456' if x.split(': ', 1)[0] in AGENT_CID else x for x in blk]
                else:
                    out += [x.split(': ', 1)[0] + ': %2B4930123456' if 'Caller-' + x.split(': ', 1)[0][len(P):] in AGENT_CID else x for x in blk]
                i = j
                continue
            if cust and k in gw_top:
                l = gw_top[k]
            if cust and k in IDVARS:
                if k == 'variable_uuid': out += gw_vars
                i += 1
                continue
            out.append(l)
            i += 1
        b = '\n'.join(out) + sep + rest
        return b.replace(OLD, NEW).replace('sofia/internal/1010@127.0.0.1', 'sofia/gateway/gw1/%2B4930123456')
    frames = [f for f in cb if seq(f) is None][:3] + [list(f) for f in cb if seq(f) and seq(f) <= 10008]
    frames[-1][1] = frames[-1][1].replace('%20%26bridge(user/1000@127.0.0.1)', '%20%26park()')
    for f in ub:
        s = seq(f)
        if s in (10007, 10008):  # the park of the customer's leg, after the job's answer
            b = rewrite(f[1])
            b = setk(setk(b, 'Event-Sequence', str(s + 2)), 'Event-Date-Timestamp', str(1796300005008000 + (s - 10007) * 2000))
            b = b.replace('12%3A13%3A20', '12%3A13%3A25')
            frames.append([f[0], b])
    for f in ub:
        s = seq(f)
        if s is None or s < 10009: continue
        b = rewrite(f[1])
        b = b.replace('Job-Command-Arg: user/1000', 'Job-Command-Arg: %7Borigination_caller_id_number=%2B4930123456%7Duser/1000')
        frames.append([f[0], setk(b, 'Event-Sequence', str(s + 3))])
    frames.append(DISC)
    write('dialler-customer-first-park-uuid-bridge-agent.esl', frames)

callback_refused(); carrier_408(); failover_404(); intercept_link_lost(); dialler()
