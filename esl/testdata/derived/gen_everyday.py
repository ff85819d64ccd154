#!/usr/bin/env python3
"""Everyday office flows of a vanilla FreeSWITCH 1.10 (see README.txt, "Everyday flows"),
written from the switch's source in the byte format of the other derived files: plain
event frames with Content-Length, URL-encoded values, the header sets of the captured
events of the same names, variables only on the event kinds that carry them."""
import os, datetime, urllib.parse, uuid as uuidlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORE = '505c1098-e4b0-4216-afbe-3416c6ee1681'
T0 = 1796300000000000


def enc(v):
    # switch_url_encode: SWITCH_URL_UNSAFE and control bytes become %XX.
    out = []
    for ch in str(v):
        if ch in '\r\n "#%&+:;<=>?@[\\]^`{|}' or ord(ch) < 32 or ord(ch) > 126:
            out.append('%%%02X' % ord(ch))
        else:
            out.append(ch)
    return ''.join(out)


def uid(tag):
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, 'ctibridge-everyday/' + tag))


class Chan:
    def __init__(self, tag, name, direction, username, cid, dest, context='default', source='mod_sofia',
                 created=0, callee=None, callee_name=None, cid_name=None, variables=()):
        self.uuid = uid(tag)
        self.name = name
        self.direction = direction
        self.username, self.cid, self.cid_name, self.dest = username, cid, cid_name or cid, dest
        self.orig_cid = cid
        self.context, self.source = context, source
        self.created, self.answered, self.hangup = T0 + created, 0, 0
        self.callee, self.callee_name = callee, callee_name
        self.state, self.callstate, self.answer_state = 'CS_INIT', 'DOWN', 'ringing'
        self.other = None  # (Other-Type, Chan)
        self.call_uuid = self.uuid
        self.vars = [('variable_uuid', self.uuid), ('variable_call_uuid', self.uuid)] + list(variables)

    def setvar(self, k, v):
        k = 'variable_' + k
        for i, (n, _) in enumerate(self.vars):
            if n == k:
                if v is None:
                    del self.vars[i]
                else:
                    self.vars[i] = (k, v)
                return
        if v is not None:
            self.vars.append((k, v))

    def profile(self, prefix, other=False):
        p = 'Other-Leg-' if other else 'Caller-'
        h = [(p + 'Direction', self.direction), (p + 'Logical-Direction', self.direction),
             (p + 'Username', self.username), (p + 'Dialplan', 'XML'),
             (p + 'Caller-ID-Name', self.cid_name), (p + 'Caller-ID-Number', self.cid),
             (p + 'Orig-Caller-ID-Name', self.orig_cid), (p + 'Orig-Caller-ID-Number', self.orig_cid)]
        if self.callee is not None:
            h += [(p + 'Callee-ID-Name', self.callee_name or self.callee), (p + 'Callee-ID-Number', self.callee)]
        h += [(p + 'Network-Addr', '127.0.0.1'), (p + 'ANI', self.orig_cid),
              (p + 'Destination-Number', self.dest), (p + 'Unique-ID', self.uuid),
              (p + 'Source', self.source), (p + 'Context', self.context),
              (p + 'Channel-Name', self.name)]
        if not other:
            h.append((p + 'Profile-Index', '1'))
        h += [(p + 'Profile-Created-Time', str(self.created)), (p + 'Channel-Created-Time', str(self.created)),
              (p + 'Channel-Answered-Time', str(self.answered)), (p + 'Channel-Hangup-Time', str(self.hangup)),
              (p + 'Channel-Transfer-Time', '0'), (p + 'Screen-Bit', 'true'),
              (p + 'Privacy-Hide-Name', 'false'), (p + 'Privacy-Hide-Number', 'false')]
        return h


class Flow:
    def __init__(self, seq=10001):
        self.frames = ['Content-Type: auth/request\n\n',
                       'Content-Type: command/reply\nReply-Text: +OK accepted\n\n',
                       'Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n']
        self.seq = seq
        self.t = T0

    def at(self, ms):
        self.t = T0 + int(ms * 1000)
        return self

    def skip(self, n):
        self.seq += n

    def ev(self, name, ch, *, file='switch_channel.c', func='switch_channel_perform_x', pre=(), post=(),
           vars=True, subclass=None, custom=(), other=True, step=1):
        ts = self.t
        dt = datetime.datetime.fromtimestamp(ts / 1e6, datetime.timezone.utc)
        h = [('Event-Name', name)]
        if subclass:
            h.append(('Event-Subclass', subclass))
        h += [('Core-UUID', CORE), ('FreeSWITCH-Hostname', 'vm'), ('FreeSWITCH-Switchname', 'vm'),
              ('FreeSWITCH-IPv4', '192.0.2.2'), ('Event-Date-Local', dt.strftime('%Y-%m-%d %H:%M:%S')),
              ('Event-Date-GMT', dt.strftime('%a, %d %b %Y %H:%M:%S GMT')), ('Event-Date-Timestamp', str(ts))]
        calling = [('Event-Calling-File', file), ('Event-Calling-Function', func), ('Event-Calling-Line-Number', '1')]
        if not subclass:
            h += calling
        h.append(('Event-Sequence', str(self.seq)))
        h += list(pre)
        if ch is not None:
            h += [('Channel-State', ch.state), ('Channel-Call-State', ch.callstate), ('Channel-Name', ch.name),
                  ('Unique-ID', ch.uuid), ('Call-Direction', ch.direction),
                  ('Presence-Call-Direction', ch.direction), ('Channel-Call-UUID', ch.call_uuid),
                  ('Answer-State', ch.answer_state)]
            h += ch.profile('Caller-')
            if other and ch.other:
                h.append(('Other-Type', ch.other[0]))
                h += ch.other[1].profile('', other=True)
        h += list(post)
        if vars and ch is not None:
            h += ch.vars
        if subclass:
            h += calling
            h += list(custom)
        body = ''.join('%s: %s\n' % (k, enc(v)) for k, v in h) + '\n'
        self.frames.append('Content-Length: %d\nContent-Type: text/event-plain\n\n%s' % (len(body.encode()), body))
        self.seq += step
        self.t += 2000

    # --- common sequences -------------------------------------------------------------
    def callstate(self, ch, new):
        old = ch.callstate
        ch.callstate = new
        self.ev('CHANNEL_CALLSTATE', ch, vars=False, post=[('Original-Channel-Call-State', old)])

    def create(self, ch):
        ch.state = 'CS_INIT'
        self.ev('CHANNEL_CREATE', ch, file='switch_core_state_machine.c', func='switch_core_session_run')
        if ch.direction == 'inbound':
            ch.callstate = 'RINGING'
            self.ev('CHANNEL_CALLSTATE', ch, vars=False, post=[('Original-Channel-Call-State', 'DOWN')])

    def app(self, ch, app, data='', *, complete=True, response=None):
        ch.state = 'CS_EXECUTE'
        au = uid('%s/%s/%s/%d' % (ch.uuid, app, data, self.seq))
        self.ev('CHANNEL_EXECUTE', ch, file='switch_core_session.c', func='switch_core_session_exec',
                post=[('Application', app), ('Application-Data', data), ('Application-UUID', au)])
        if complete:
            self.done(ch, app, data, au, response)
        return au

    def done(self, ch, app, data, au, response=None):
        post = [('Application', app), ('Application-Data', data)]
        if response is not None:
            post.append(('Application-Response', response))
        post.append(('Application-UUID', au))
        self.ev('CHANNEL_EXECUTE_COMPLETE', ch, file='switch_core_session.c', func='switch_core_session_exec', post=post)

    def answer(self, ch, file='switch_channel.c', func='switch_channel_perform_mark_answered'):
        ch.answered = self.t
        ch.answer_state = 'answered'
        self.ev('CHANNEL_ANSWER', ch, file=file, func=func)
        self.callstate(ch, 'ACTIVE')

    def hangup(self, ch, cause, q850, disp=None, term=None, complete=True, destroy=True):
        ch.answer_state = 'hangup'
        ch.setvar('sip_term_cause', term)
        ch.setvar('hangup_cause', cause)
        ch.setvar('hangup_cause_q850', str(q850))
        self.ev('CHANNEL_HANGUP', ch, func='switch_channel_perform_hangup', post=[('Hangup-Cause', cause)])
        self.callstate(ch, 'HANGUP')
        if disp:
            ch.setvar('sip_hangup_disposition', disp)
        if complete:
            self.complete(ch, cause, destroy)

    def complete(self, ch, cause, destroy=True):
        ch.hangup = self.t
        ch.state = 'CS_REPORTING'
        self.ev('CHANNEL_HANGUP_COMPLETE', ch, file='switch_core_state_machine.c',
                func='switch_core_session_reporting_state', post=[('Hangup-Cause', cause)])
        if destroy:
            self.destroy(ch)

    def destroy(self, ch):
        ch.state = 'CS_DESTROY'
        self.ev('CHANNEL_DESTROY', ch, file='switch_core_session.c', func='switch_core_session_perform_destroy')

    def write(self, name):
        self.frames.append('Content-Type: text/disconnect-notice\nContent-Length: 0\n\n')
        with open(os.path.join(HERE, name + '.esl'), 'w') as f:
            f.write(''.join(self.frames))


def inbound_phone(tag, user, dest, created=0):
    return Chan(tag, 'sofia/internal/%s@127.0.0.1' % user, 'inbound', user, user, dest, created=created,
                variables=[('variable_sip_call_id', uid(tag + '/cid')[:16].replace('-', '')),
                           ('variable_domain_name', '127.0.0.1'), ('variable_sip_auth_username', user),
                           ('variable_user_name', user)])


CONTACT = {'1000': '1000-0x5591f1b07bf0@127.0.0.1:5261', '1001': '1001-0x5566249b9bf0@127.0.0.1:5262',
           '1002': '1002-0x55d0c43a1bf0@127.0.0.1:5263'}


def user_leg(tag, user, caller, created):
    """A leg the originate creates for user/<user> (sofia_outgoing_channel via the user/ endpoint)."""
    c = CONTACT[user]
    ch = Chan(tag, 'sofia/internal/' + c, 'outbound', caller.cid, caller.cid, c.split('@')[0], created=created,
              callee=c.split('@')[0], callee_name='Outbound Call',
              variables=[('variable_dialed_user', user), ('variable_dialed_domain', '127.0.0.1'),
                         ('variable_sip_call_id', uid(tag + '/cid')[:16].replace('-', '')),
                         ('variable_originator', caller.uuid), ('variable_originating_leg_uuid', caller.uuid)])
    ch.vars[1] = ('variable_call_uuid', caller.uuid)
    ch.call_uuid = caller.uuid
    ch.other = ('originator', caller)
    return ch


def ring_user(f, leg):
    """CHANNEL_OUTGOING (switch_core_session_outgoing_channel), CREATE/ORIGINATE (CS_INIT),
    180 Ringing: CHANNEL_PROGRESS and callstate RINGING (sofia_handle_sip_i_state)."""
    f.ev('CHANNEL_OUTGOING', leg, file='switch_core_session.c', func='switch_core_session_outgoing_channel', vars=False)
    f.ev('CHANNEL_CREATE', leg, file='switch_core_state_machine.c', func='switch_core_session_run')
    f.ev('CHANNEL_ORIGINATE', leg, file='switch_core_state_machine.c', func='switch_core_session_run')
    leg.state = 'CS_CONSUME_MEDIA'
    f.ev('CHANNEL_PROGRESS', leg, file='sofia.c', func='sofia_handle_sip_i_state')
    f.callstate(leg, 'RINGING')


def early_media(f, ch):
    """ringback=${us-ring} on the caller: switch_ivr_originate pre-answers it (183)."""
    ch.answer_state = 'early'
    f.ev('CHANNEL_PROGRESS_MEDIA', ch, file='switch_channel.c', func='switch_channel_perform_mark_pre_answered')
    f.callstate(ch, 'EARLY')


def bridge(f, a, b, func='switch_ivr_multi_threaded_bridge', file='switch_ivr_bridge.c'):
    a.other = ('originatee', b)
    a.setvar('bridge_uuid', b.uuid)
    a.setvar('bridge_channel', b.name)
    f.ev('CHANNEL_BRIDGE', a, file=file, func=func,
         pre=[('Bridge-A-Unique-ID', a.uuid), ('Bridge-B-Unique-ID', b.uuid)])


def unbridge(f, a, b, func='switch_ivr_multi_threaded_bridge', file='switch_ivr_bridge.c'):
    pre = [('Bridge-A-Unique-ID', a.uuid)]
    if b is not None:
        pre.append(('Bridge-B-Unique-ID', b.uuid))
    f.ev('CHANNEL_UNBRIDGE', a, file=file, func=func, pre=pre)


LOCAL_EXT_HEAD = [('set', 'ringback=%(2000,4000,440,480)'), ('set', 'call_timeout=30'),
                  ('set', 'hangup_after_bridge=true'), ('set', 'continue_on_fail=true')]


def local_extension(f, ch, ext):
    """Vanilla Local_Extension up to its bridge (the hash inserts it makes are left out)."""
    f.app(ch, 'export', 'dialed_extension=' + ext)
    for a, d in LOCAL_EXT_HEAD:
        f.app(ch, a, d)
    f.app(ch, 'hash', 'insert/127.0.0.1-last_dial_ext/%s/%s' % (ext, ch.uuid))


def loopback_voicemail(f, caller, ext, tag, created_ms):
    """bridge loopback/app=voicemail:default 127.0.0.1 <ext> (vanilla Local_Extension's fallback):
    mod_loopback loopback_outgoing_channel makes the -a half (outbound, Other-Leg the caller)
    and the -b half (inbound, runs pre_answer + voicemail); voicemail only pre-answers
    (mod_voicemail, switch_ivr_record_file's switch_channel_pre_answer), so both halves stay
    EARLY, as in the sip-call-to-unregistered-user capture."""
    a = Chan(tag + '-a', 'loopback/voicemail-a', 'outbound', caller.cid, caller.cid, 'voicemail',
             source='mod_loopback', created=created_ms * 1000, callee='default 127.0.0.1 ' + ext,
             callee_name='default 127.0.0.1 ' + ext)
    b = Chan(tag + '-b', 'loopback/voicemail-b', 'inbound', caller.cid, caller.cid, 'voicemail',
             source='mod_loopback', created=created_ms * 1000, callee='default 127.0.0.1 ' + ext,
             callee_name='default 127.0.0.1 ' + ext)
    a.vars += [('variable_loopback_leg', 'A'), ('variable_other_loopback_leg_uuid', b.uuid),
               ('variable_loopback_app', 'voicemail'), ('variable_originator', caller.uuid),
               ('variable_originating_leg_uuid', caller.uuid)]
    b.vars += [('variable_loopback_leg', 'B'), ('variable_other_loopback_leg_uuid', a.uuid),
               ('variable_loopback_app', 'voicemail')]
    a.other = ('originator', caller)
    f.ev('CHANNEL_OUTGOING', a, file='switch_core_session.c', func='switch_core_session_outgoing_channel', vars=False)
    f.ev('CHANNEL_CREATE', a, file='switch_core_state_machine.c', func='switch_core_session_run')
    f.ev('CHANNEL_ORIGINATE', a, file='switch_core_state_machine.c', func='switch_core_session_run')
    f.create(b)
    pa = f.app(b, 'pre_answer', '', complete=False)
    a.answer_state = b.answer_state = 'early'
    a.state = 'CS_CONSUME_MEDIA'
    f.ev('CHANNEL_PROGRESS_MEDIA', a, file='switch_channel.c', func='switch_channel_perform_mark_pre_answered')
    f.callstate(a, 'EARLY')
    f.ev('CHANNEL_PROGRESS_MEDIA', b, file='switch_channel.c', func='switch_channel_perform_mark_pre_answered')
    f.callstate(b, 'EARLY')
    f.done(b, 'pre_answer', '', pa)
    vm = f.app(b, 'voicemail', 'default 127.0.0.1 ' + ext, complete=False)
    caller.callee, caller.callee_name = 'default 127.0.0.1 ' + ext, 'default 127.0.0.1 ' + ext
    bridge(f, caller, a)
    return a, b, vm


def answer_app(f, ch):
    """The answer application: EXECUTE, the answer (sofia 200 OK), EXECUTE_COMPLETE."""
    au = f.app(ch, 'answer', '', complete=False)
    f.answer(ch)
    f.done(ch, 'answer', '', au)


def leave_message(f, caller, a, b, vm, ext, start_ms, talk_ms, seconds, br):
    """The caller records a message and hangs up (recv_bye); the customer's bridge ends,
    the loopback halves go down, voicemail saves the message (vm::maintenance leave-message,
    mod_voicemail voicemail_leave_main)."""
    path = '/srv/pbx1/storage/voicemail/default/127.0.0.1/%s/msg_%s.wav' % (ext, uid(b.uuid + '/msg'))
    f.at(start_ms)
    f.ev('RECORD_START', b, file='switch_ivr_play_say.c', func='switch_ivr_record_file_event',
         post=[('Record-File-Path', path)])
    f.skip(3)
    f.at(start_ms + talk_ms)
    f.hangup(caller, 'NORMAL_CLEARING', 16, disp='recv_bye', term='16', complete=False)
    unbridge(f, caller, a)
    f.done(caller, 'bridge', 'loopback/app=voicemail:default 127.0.0.1 ' + ext, br)
    f.hangup(a, 'NORMAL_CLEARING', 16, complete=False)
    f.hangup(b, 'NORMAL_CLEARING', 16, complete=False)
    f.ev('RECORD_STOP', b, file='switch_ivr_play_say.c', func='switch_ivr_record_file_event',
         post=[('Record-File-Path', path)])
    f.ev('CUSTOM', b, subclass='vm::maintenance', file='mod_voicemail.c', func='voicemail_leave_main',
         custom=[('VM-Action', 'leave-message'), ('VM-User', ext), ('VM-Domain', '127.0.0.1'),
                 ('VM-Caller-ID-Name', caller.cid), ('VM-Caller-ID-Number', caller.cid),
                 ('VM-File-Path', path), ('VM-Flags', ''), ('VM-Folder', 'inbox'), ('VM-UUID', uid(path)),
                 ('VM-Message-Len', str(seconds)), ('VM-Timestamp', str(T0 // 1000000 + start_ms // 1000))])
    f.done(b, 'voicemail', 'default 127.0.0.1 ' + ext, vm)
    f.complete(caller, 'NORMAL_CLEARING')
    f.complete(a, 'NORMAL_CLEARING')
    f.complete(b, 'NORMAL_CLEARING')


# 1. internal-no-answer-vanilla-voicemail-caller-leaves-message ---------------------------
def internal_no_answer_voicemail():
    f = Flow()
    c = inbound_phone('inva-1000', '1000', '1001')
    f.create(c)
    local_extension(f, c, '1001')
    br = f.app(c, 'bridge', 'user/1001@127.0.0.1', complete=False)
    leg = user_leg('inva-1001', '1001', c, 40)
    f.at(40)
    ring_user(f, leg)
    early_media(f, c)
    f.skip(2)
    # call_timeout=30: switch_ivr_originate's timeout, the leg is CANCELled NO_ANSWER.
    f.at(30040)
    f.hangup(leg, 'NO_ANSWER', 19, disp='send_cancel')
    c.setvar('originate_disposition', 'NO_ANSWER')
    c.setvar('DIALSTATUS', 'NOANSWER')
    c.setvar('last_bridge_hangup_cause', 'NO_ANSWER')
    f.done(c, 'bridge', 'user/1001@127.0.0.1', br)
    answer_app(f, c)  # vanilla Local_Extension: answer, sleep 1000, voicemail via loopback
    f.at(31060)
    f.app(c, 'sleep', '1000')
    br2 = f.app(c, 'bridge', 'loopback/app=voicemail:default 127.0.0.1 1001', complete=False)
    c.callstate = 'RING_WAIT'
    a, b, vm = loopback_voicemail(f, c, '1001', 'inva-vm', 31080)
    leave_message(f, c, a, b, vm, '1001', 31300, 9000, 9, br2)
    f.write('internal-no-answer-vanilla-voicemail-caller-leaves-message')


internal_no_answer_voicemail()


# 2. agent-calls-unregistered-colleague-voicemail-message ---------------------------------
def unregistered_colleague_voicemail():
    f = Flow(seq=20001)
    c = inbound_phone('unreg-1000', '1000', '1002')
    f.create(c)
    local_extension(f, c, '1002')
    # user/1002: mod_dptools user_outgoing_channel finds no contact (sofia_contact
    # error/user_not_registered): no leg is created, the originate fails at once.
    br = f.app(c, 'bridge', 'user/1002@127.0.0.1', complete=False)
    f.at(130)
    c.setvar('originate_disposition', 'USER_NOT_REGISTERED')
    c.setvar('DIALSTATUS', 'USER_NOT_REGISTERED')
    c.setvar('originate_failed_cause', 'USER_NOT_REGISTERED')
    f.done(c, 'bridge', 'user/1002@127.0.0.1', br)
    au = f.app(c, 'answer', '', complete=False)
    early_media(f, c)
    f.answer(c)
    f.done(c, 'answer', '', au)
    f.at(1140)
    f.app(c, 'sleep', '1000')
    br2 = f.app(c, 'bridge', 'loopback/app=voicemail:default 127.0.0.1 1002', complete=False)
    c.callstate = 'RING_WAIT'
    a, b, vm = loopback_voicemail(f, c, '1002', 'unreg-vm', 1160)
    c.setvar('originate_disposition', 'SUCCESS')
    leave_message(f, c, a, b, vm, '1002', 1400, 12000, 12, br2)
    f.write('agent-calls-unregistered-colleague-voicemail-message')


# 3. agent-dials-voicemail-star98-hangs-up -------------------------------------------------
def star98():
    f = Flow(seq=30001)
    c = inbound_phone('vmain-1000', '1000', '*98')
    f.create(c)
    answer_app(f, c)
    f.at(1020)
    f.app(c, 'sleep', '1000')
    vm = f.app(c, 'voicemail', 'check default 127.0.0.1', complete=False)
    f.at(1200)
    # mod_voicemail voicemail_check_main: the box's login, VM-Action authentication.
    f.ev('CUSTOM', c, subclass='vm::maintenance', file='mod_voicemail.c', func='voicemail_check_main',
         custom=[('VM-Action', 'authentication'), ('VM-Auth-Result', 'success'), ('VM-User', '1000'),
                 ('VM-Domain', '127.0.0.1')])
    f.skip(6)
    f.at(24000)
    f.hangup(c, 'NORMAL_CLEARING', 16, disp='recv_bye', term='16', complete=False)
    f.done(c, 'voicemail', 'check default 127.0.0.1', vm)
    f.complete(c, 'NORMAL_CLEARING')
    f.write('agent-dials-voicemail-star98-hangs-up')


# 4. agent-conference-3000-alone-hangs-up ---------------------------------------------------
def conf_alone():
    f = Flow(seq=40001)
    c = inbound_phone('conf3000-1000', '1000', '3000')
    f.create(c)
    answer_app(f, c)
    cf = f.app(c, 'conference', '3000-127.0.0.1@default', complete=False)
    cu = uid('conf3000')
    conf = [('Conference-Name', '3000-127.0.0.1'), ('Conference-Domain', '127.0.0.1'), ('Conference-Size', '0'),
            ('Conference-Ghosts', '0'), ('Conference-Profile-Name', 'default'), ('Conference-Unique-ID', cu)]
    f.ev('CUSTOM', None, subclass='conference::maintenance', file='mod_conference.c', func='conference_new',
         custom=conf + [('Action', 'conference-create')])
    member = [('Floor', 'false'), ('Video', 'false'), ('Hear', 'true'), ('See', 'true'), ('Speak', 'true'),
              ('Talking', 'false'), ('Mute-Detect', 'false'), ('Member-ID', '1'), ('Member-Type', 'member'),
              ('Member-Ghost', 'false'), ('Energy-Level', '100'), ('Current-Energy', '0')]
    conf[2] = ('Conference-Size', '1')
    f.ev('CUSTOM', c, subclass='conference::maintenance', file='conference_member.c', func='conference_member_add',
         custom=conf + member + [('Action', 'add-member')])
    f.skip(3)
    f.at(15000)
    f.hangup(c, 'NORMAL_CLEARING', 16, disp='recv_bye', term='16', complete=False)
    conf[2] = ('Conference-Size', '0')
    f.ev('CUSTOM', c, subclass='conference::maintenance', file='conference_member.c', func='conference_member_del',
         custom=conf + member + [('Action', 'del-member')])
    f.done(c, 'conference', '3000-127.0.0.1@default', cf)
    f.complete(c, 'NORMAL_CLEARING')
    f.ev('CUSTOM', None, subclass='conference::maintenance', file='mod_conference.c', func='conference_thread_run',
         custom=conf + [('Action', 'conference-destroy')])
    f.write('agent-conference-3000-alone-hangs-up')


# 5. pickup-app-group-pickup-1001-answers ---------------------------------------------------
def pickup_group():
    f = Flow(seq=50001)
    c = inbound_phone('pk-1010', '1010', '2115')
    f.create(c)
    for a, d in [('set', 'ringback=%(2000,4000,440,480)'), ('set', 'call_timeout=30'),
                 ('set', 'hangup_after_bridge=true')]:
        f.app(c, a, d)
    data = 'user/1000@127.0.0.1,pickup/sales'
    br = f.app(c, 'bridge', data, complete=False)
    leg = user_leg('pk-1000', '1000', c, 30)
    f.at(30)
    ring_user(f, leg)
    # pickup/sales: mod_dptools pickup_outgoing_channel sets the new channel straight to
    # CS_ROUTING (no CS_INIT, so no CHANNEL_CREATE/ORIGINATE), CF_PICKUP, process_cdr=false.
    p = Chan('pk-pickup', 'pickup/sales', 'outbound', '1010', '1010', 'sales', created=32,
             variables=[('variable_originator', c.uuid), ('variable_originating_leg_uuid', c.uuid),
                        ('variable_process_cdr', 'false')])
    p.vars[1] = ('variable_call_uuid', c.uuid)
    p.call_uuid = c.uuid
    p.other = ('originator', c)
    p.state = 'CS_ROUTING'
    f.ev('CHANNEL_OUTGOING', p, file='switch_core_session.c', func='switch_core_session_outgoing_channel', vars=False)
    p.state = 'CS_CONSUME_MEDIA'
    early_media(f, c)
    f.skip(4)
    # 1001 dials *8: extension "group-pickup", application pickup sales.
    f.at(4000)
    q = inbound_phone('pk-1001', '1001', '*8', created=4000)
    f.create(q)
    pu = f.app(q, 'pickup', 'sales', complete=False)
    # pickup_function: the picker takes the caller's id (caller 1010, callee 1001),
    # CALL_UPDATE Direction RECV, picker to CS_HIBERNATE, the pickup channel marked answered.
    q.cid = q.cid_name = '1010'
    q.callee = q.callee_name = '1001'
    f.ev('CALL_UPDATE', q, file='mod_dptools.c', func='pickup_function', pre=[('Direction', 'RECV')])
    q.state = 'CS_HIBERNATE'
    f.answer(p)
    f.done(q, 'pickup', 'sales', pu)
    # check_channel_status (customer's thread): CF_CHANNEL_SWAP: the pickup channel is hung
    # up PICKED_OFF, the picker takes its place and is answered (switch_channel_answer: 200 OK).
    f.hangup(p, 'PICKED_OFF', 0, complete=False)
    q.setvar('picked_up_uuid', p.uuid)
    f.answer(q, file='sofia.c', func='sofia_answer_channel')
    # the other ring peer loses the race (and_argc > 1: LOSE_RACE, CANCEL to the phone).
    f.hangup(leg, 'LOSE_RACE', 502, disp='send_cancel', complete=False)
    f.complete(p, 'PICKED_OFF')
    c.setvar('originate_disposition', 'SUCCESS')
    f.answer(c)
    q.state = 'CS_EXCHANGE_MEDIA'
    c.callee, c.callee_name = '1001', '1001'
    bridge(f, c, q)
    f.complete(leg, 'LOSE_RACE')
    f.skip(5)
    f.at(12000)
    # 1010 hangs up: audio_bridge_on_exchange_media hangs the picker's leg up (send_bye).
    f.hangup(c, 'NORMAL_CLEARING', 16, disp='recv_bye', term='16', complete=False)
    unbridge(f, c, q)
    f.done(c, 'bridge', data, br)
    f.hangup(q, 'NORMAL_CLEARING', 16, disp='send_bye', complete=False)
    f.complete(c, 'NORMAL_CLEARING')
    f.complete(q, 'NORMAL_CLEARING')
    f.write('pickup-app-group-pickup-1001-answers')


# 6. bypass-media-agent-answers-agent-hangs-up -----------------------------------------------
def bypass_media():
    f = Flow(seq=60001)
    c = inbound_phone('bp-1010', '1010', '2116')
    f.create(c)
    for a, d in [('set', 'bypass_media=true'), ('set', 'call_timeout=30'), ('set', 'hangup_after_bridge=true')]:
        f.app(c, a, d)
    data = 'user/1000@127.0.0.1'
    br = f.app(c, 'bridge', data, complete=False)
    leg = user_leg('bp-1000', '1000', c, 30)
    f.at(30)
    ring_user(f, leg)
    # CF_PROXY_MODE: no ringback is generated; the 180 is relayed (switch_channel_ring_ready
    # on the caller: CHANNEL_PROGRESS, sofia sends 180).
    f.ev('CHANNEL_PROGRESS', c, file='switch_channel.c', func='switch_channel_perform_mark_ring_ready')
    f.skip(3)
    f.at(3500)
    f.answer(leg, file='sofia.c', func='sofia_handle_sip_i_state')
    c.setvar('originate_disposition', 'SUCCESS')
    f.answer(c, file='sofia.c', func='sofia_answer_channel')
    # mod_dptools audio_bridge_function: CF_PROXY_MODE -> switch_ivr_signal_bridge: EXECUTE
    # signal_bridge on both legs, both to CS_HIBERNATE; the bridge application returns at once.
    c.callee, c.callee_name = leg.callee, 'Outbound Call'
    c.state = 'CS_HIBERNATE'
    leg.state = 'CS_HIBERNATE'
    for x, y in [(c, leg), (leg, c)]:
        f.ev('CHANNEL_EXECUTE', x, file='switch_ivr_bridge.c', func='switch_ivr_signal_bridge',
             post=[('Application', 'signal_bridge'), ('Application-Data', y.uuid)])
    c.state = 'CS_EXECUTE'
    f.done(c, 'bridge', data, br)
    c.state = 'CS_HIBERNATE'
    # signal_bridge_on_hibernate on the originator: CHANNEL_BRIDGE.
    c.setvar('signal_bridge', 'true')
    c.setvar('signal_bridge_to', leg.uuid)
    bridge(f, c, leg, func='signal_bridge_on_hibernate')
    f.skip(4)
    f.at(15000)
    # 1000 hangs up: BYE from the phone; signal_bridge_on_hangup of the agent leg hangs the
    # customer up (hangup_after_bridge, the peer answered); the customer's own on_hangup
    # finds no signal_bridge_to left and fires UNBRIDGE without a B uuid.
    f.hangup(leg, 'NORMAL_CLEARING', 16, disp='recv_bye', term='16', complete=False)
    c.setvar('signal_bridge_to', None)
    f.hangup(c, 'NORMAL_CLEARING', 16, disp='send_bye', complete=False)
    unbridge(f, c, None, func='signal_bridge_on_hangup')
    f.complete(leg, 'NORMAL_CLEARING')
    f.complete(c, 'NORMAL_CLEARING')
    f.write('bypass-media-agent-answers-agent-hangs-up')


# 7. inbound-early-media-caller-bye-before-answer --------------------------------------------
def caller_early_bye():
    """The customer's phone ends the early dialog with BYE, not CANCEL (RFC 3261 15: a caller
    MAY send BYE on an early dialog). sofia_handle_sip_i_bye (MANUAL_BYE): status 200 ->
    sofia_glue_sip_cause_to_freeswitch -> NORMAL_CLEARING, sip_hangup_disposition recv_bye,
    on a leg that never answered. switch_ivr_originate's check_channel_status sees the caller
    not ready (IDX_CANCEL): the ringing leg is hung up ORIGINATOR_CANCEL (send_cancel)."""
    f = Flow(seq=70001)
    c = inbound_phone('eb-1010', '1010', '2100')
    f.create(c)
    for a, d in [('set', 'ringback=%(2000,4000,440,480)'), ('set', 'call_timeout=30'),
                 ('set', 'hangup_after_bridge=true')]:
        f.app(c, a, d)
    br = f.app(c, 'bridge', 'user/1000@127.0.0.1', complete=False)
    leg = user_leg('eb-1000', '1000', c, 30)
    f.at(30)
    ring_user(f, leg)
    early_media(f, c)
    f.skip(3)
    f.at(6200)
    f.hangup(c, 'NORMAL_CLEARING', 16, term='16', complete=False)
    f.hangup(leg, 'ORIGINATOR_CANCEL', 487, disp='send_cancel')
    c.setvar('originate_disposition', 'ORIGINATOR_CANCEL')
    c.setvar('DIALSTATUS', 'CANCEL')
    c.setvar('sip_hangup_disposition', 'recv_bye')
    f.done(c, 'bridge', 'user/1000@127.0.0.1', br)
    f.complete(c, 'NORMAL_CLEARING')
    f.write('inbound-early-media-caller-bye-before-answer')


# 8. outbound-gateway-early-media-agent-bye-before-answer ------------------------------------
def agent_early_bye():
    """1000 dials out through sofia/gateway/gw1; the carrier sends 183 with SDP (early media
    relayed to the phone); 1000's phone gives up with BYE on the early dialog: 1000's leg
    NORMAL_CLEARING recv_bye unanswered; the carrier leg ORIGINATOR_CANCEL (send_cancel)."""
    f = Flow(seq=80001)
    c = inbound_phone('gb-1000', '1000', '9+4930123456')
    f.create(c)
    f.app(c, 'set', 'hangup_after_bridge=true')
    data = 'sofia/gateway/gw1/+4930123456'
    br = f.app(c, 'bridge', data, complete=False)
    g = Chan('gb-gw', 'sofia/gateway/gw1/+4930123456', 'outbound', '1000', '1000', '+4930123456', created=40,
             callee='+4930123456', callee_name='Outbound Call',
             variables=[('variable_sip_call_id', uid('gb-gw/cid')[:16].replace('-', '')),
                        ('variable_originator', c.uuid), ('variable_originating_leg_uuid', c.uuid),
                        ('variable_sip_gateway_name', 'gw1')])
    g.vars[1] = ('variable_call_uuid', c.uuid)
    g.call_uuid = c.uuid
    g.other = ('originator', c)
    f.at(40)
    ring_user(f, g)
    g.answer_state = 'early'
    f.ev('CHANNEL_PROGRESS_MEDIA', g, file='sofia.c', func='sofia_handle_sip_i_state')
    f.callstate(g, 'EARLY')
    early_media(f, c)
    f.skip(2)
    f.at(9100)
    f.hangup(c, 'NORMAL_CLEARING', 16, term='16', complete=False)
    f.hangup(g, 'ORIGINATOR_CANCEL', 487, disp='send_cancel')
    c.setvar('originate_disposition', 'ORIGINATOR_CANCEL')
    c.setvar('DIALSTATUS', 'CANCEL')
    c.setvar('sip_hangup_disposition', 'recv_bye')
    f.done(c, 'bridge', data, br)
    f.complete(c, 'NORMAL_CLEARING')
    f.write('outbound-gateway-early-media-agent-bye-before-answer')


unregistered_colleague_voicemail()
star98()
conf_alone()
pickup_group()
bypass_media()
caller_early_bye()
agent_early_bye()
