// Every string the pages show, in one table: Chinese (default) and English.
const T = {
  zh: {
    'app.title': '网关维护控制台', 'lang.switch': 'English', 'nav.dashboard': '总览', 'nav.meters': '表计', 'nav.doors': '门禁', 'nav.people': '人员',
    'nav.camera': '摄像头', 'nav.config': '配置', 'nav.system': '系统', 'nav.users': '账号', 'logout': '退出',
    'setup.title': '首次设置', 'setup.intro': '创建第一个管理员账号。设置令牌：扫描安装时打印的二维码标签即可自动填入；或在设备的屏幕/串口上运行 estate-edge setup-token（estate-edge doctor 也会显示）；服务日志中也有。令牌只能用一次，过期后运行 estate-edge setup-token 获取新的。',
    'setup.token': '设置令牌', 'setup.submit': '创建管理员', 'login.title': '登录', 'login.user': '用户名', 'login.password': '密码', 'login.submit': '登录',
    'password.new': '新密码（至少 10 个字符）', 'password.current': '当前密码', 'password.change': '修改密码',
    'err.bad_credentials': '用户名或密码错误', 'err.locked': '密码错误次数过多，登录已锁定 {min} 分钟', 'err.bad_setup_token': '设置令牌错误',
    'err.not_logged_in': '会话已过期，请重新登录', 'err.csrf': '安全令牌无效，请刷新页面', 'err.forbidden': '权限不足', 'err.bad_host': '请用网关的 IP 地址或其主机名访问（其他域名已拒绝，见 console.hostNames）', 'err.too_large': '文件太大',
    'err.not_an_image': '不是图片文件（需要 JPEG 或 PNG）', 'err.conflict': '配置已被他人修改，请重新加载后再改', 'err.invalid_config': '配置无效，未做任何修改',
    'err.network': '无法连接网关', 'err.weak_password': '密码不符合要求：至少 10 个字符，且不能包含用户名', 'err.not_configured': '未配置', 'err.restart_pending': '配置正在应用，服务重启中',
    'live.on': '实时连接', 'live.off': '实时连接断开，正在重连…', 'notconf': '此网关未配置该功能', 'loading': '加载中…', 'none': '无',
    'dash.uplink': '上行链路', 'dash.connected': '已连接', 'dash.disconnected': '未连接', 'dash.outbox': '待发记录', 'dash.oldest': '最早积压',
    'dash.meters': '表计', 'dash.doors': '门', 'dash.online': '在线', 'dash.offline': '离线', 'dash.events': '最近事件', 'dash.system': '主机',
    'dash.cpu': 'CPU 负载', 'dash.mem': '内存', 'dash.disk': '磁盘剩余', 'dash.clock': '时钟同步', 'dash.synced': '已同步', 'dash.unsynced': '未同步',
    'dash.modules': '模块', 'dash.version': '版本', 'dash.uptime': '运行时间', 'ok': '正常', 'fail': '故障',
    'cmd.run': '执行', 'cmd.args': '参数 (JSON)', 'cmd.result': '结果', 'cmd.commands': '可用命令', 'cmd.done': '已执行',
    'meters.title': '表计', 'meters.device': '设备', 'meters.values': '读数', 'meters.quality': '质量', 'meters.counters': '通信计数', 'meters.lastError': '最近错误',
    'doors.title': '门禁', 'doors.state': '状态', 'doors.unlock': '开门测试', 'doors.fire': '消防释放', 'doors.fireClear': '解除消防', 'doors.log': '事件记录',
    'doors.filterDoor': '门', 'doors.filterType': '类型', 'doors.confirmUnlock': '确认开门：{door}？', 'doors.confirmFire': '确认对所有门执行消防释放？',
    'people.title': '人员', 'people.search': '搜索姓名或编号', 'people.add': '新增', 'people.id': '编号', 'people.name': '姓名', 'people.kind': '类型',
    'people.validFrom': '生效', 'people.validUntil': '失效', 'people.groups': '门组（逗号分隔）', 'people.faces': '人脸', 'people.enrol': '上传人脸照片',
    'people.delete': '删除', 'people.edit': '编辑', 'people.photo': '照片', 'people.capture': '摄像头采集', 'people.captureHelp': '请本人正对门口摄像头，然后确定', 'people.confirmDelete': '确认删除 {id}？', 'people.save': '保存', 'people.resident': '住户', 'people.staff': '员工', 'people.visitor': '访客',
    'camera.title': '摄像头', 'camera.snapshot': '抓拍', 'camera.score': '分数',
    'config.title': '配置', 'config.form': '表单', 'config.yaml': 'YAML', 'config.validate': '校验', 'config.apply': '应用', 'config.diff': '与运行配置的差异',
    'config.download': '下载备份', 'config.upload': '上传文件', 'config.valid': '配置有效', 'config.applied': '已写入配置，服务正在重启…', 'config.back': '服务已恢复',
    'config.notEditable': '不能编辑', 'config.yamlOnly': '请在 YAML 视图中编辑', 'config.lastApply': '上次应用', 'config.rolledBack': '已自动回滚', 'config.pending': '正在应用，等待服务重启后确认',
    'config.confirmApply': '应用这些修改并重启服务？', 'config.nochanges': '没有修改', 'config.problem': '配置错误', 'config.revision': '版本', 'config.default': '默认',
    'system.title': '系统', 'system.version': '版本', 'system.uptime': '运行时间', 'system.addresses': '网络地址', 'system.models': '模型文件',
    'system.logs': '日志', 'system.level': '级别', 'system.restart': '重启服务', 'system.confirmRestart': '确认重启服务？', 'system.hash': '校验', 'system.missing': '缺失',
    'users.title': '账号', 'users.role': '角色', 'users.add': '新增账号', 'users.lastLogin': '最近登录', 'users.unlock': '解锁', 'users.delete': '删除', 'users.reset': '重置密码', 'users.locked': '已锁定',
    'door.locked': '已锁', 'door.unlocked': '已开锁', 'door.open': '门开', 'door.closed': '门关', 'door.unknown': '门状态未知', 'door.fire': '消防释放中', 'door.alarm': '报警',
    'meters.point': '点位', 'meters.value': '数值', 'meters.unit': '单位', 'meters.time': '时间', 'meters.readNow': '立即读取', 'meters.readDone': '读取成功（{ms} 毫秒，{at}）',
    'meters.countersLine': '成功 {ok}/{req} · 超时 {timeout} · 校验错 {crc} · 异常应答 {bad} · 平均 {ms} 毫秒', 'meters.busLine': '{online}/{devices} 在线 · 通信 {tx} 次',
    'meters.address': '地址', 'meters.detail': '说明', 'meters.scan': '扫描', 'meters.scanTitle': '总线扫描', 'meters.from': '起始地址', 'meters.to': '结束地址',
    'meters.badRange': '结束地址必须不小于起始地址（1–247）', 'meters.scanning': '正在扫描…', 'meters.scanProgress': '已探测 {done}/{total}，正在探测 {from}–{to}，已发现 {found} 台',
    'meters.scanDone': '扫描完成：探测 {done} 个地址，发现 {found} 台，用时 {s} 秒', 'meters.scanCancelled': '已取消：探测 {done}/{total} 个地址，发现 {found} 台', 'meters.scanReadAddress': '按协议读通信地址（不按地址范围）',
    'meters.rawHex': '自定义报文（十六进制）', 'meters.send': '发送', 'meters.pollTester': '报文测试', 'meters.bus': '总线', 'meters.dir': '方向', 'meters.frame': '报文（十六进制）',
    'meters.tx': '发送', 'meters.rx': '接收', 'meters.pollError': '错误', 'meters.noFrames': '没有报文', 'meters.unknown': '未知',
    'meters.err.timeout': '超时', 'meters.err.crc': '校验错误', 'meters.err.exception': '异常应答', 'meters.err.wrong_unit': '地址不符', 'meters.err.bad_reply': '应答无效', 'meters.err.port': '串口错误',
    'q.good': '有效', 'q.invalid': '无效', 'q.unsupported': '不支持',
    'err.already_set_up': '已完成首次设置，请直接登录', 'err.bad_args': '参数错误', 'err.bad_json': '请求格式错误', 'err.bad_level': '日志级别无效', 'err.bad_request': '请求无效',
    'err.bad_user': '用户名需为 2–64 位字母、数字或 . _ @ -', 'err.busy': '网关繁忙，请稍后再试', 'err.exists': '该账号已存在', 'err.internal': '网关内部错误（见服务日志）',
    'err.last_admin': '不能删除或降级最后一个管理员', 'err.no_change': '新配置与运行配置相同', 'err.no_frame': '摄像头暂无画面', 'err.not_editable': '此网关的配置不能在这里编辑',
    'err.not_found': '未找到', 'err.not_text': '文件不是 UTF-8 文本', 'err.poll_failed': '报文测试失败', 'err.unknown_bus': '没有这条总线', 'err.unknown_person': '没有这个人员',
    'err.unknown_user': '没有这个账号', 'err.unsupported_media_type': '不支持的文件类型', 'err.bad_duration': '开门时长超出上限', 'err.bad_people': '人员数据无效，未保存',
    'err.bad_photo': '照片数据无效', 'err.bad_schedule': '时段格式错误', 'err.bad_validity': '有效期错误', 'err.bus_busy': '总线忙，请稍后再试', 'err.expired': '命令已过期，未执行',
    'err.fire_input_active': '消防输入仍然有效，不能解除', 'err.fire_release_active': '消防释放中，不能上锁', 'err.meter_error': '读表失败', 'err.meter_timeout': '表计无应答（超时）',
    'err.meter_crc': '报文校验错误', 'err.meter_exception': '表计返回异常', 'err.meter_wrong_unit': '应答地址不符', 'err.meter_bad_reply': '表计应答无效', 'err.meter_port': '串口错误',
    'err.timeout': '执行超时', 'err.unknown_device': '没有这台设备', 'err.unknown_door': '没有这扇门', 'err.in_progress': '命令正在执行', 'err.unknown_command': '网关没有这个命令',
    'err.too_many_streams': '打开的实时视图太多', 'err.rate_limited': '操作过于频繁', 'err.disabled': '人员已停用', 'err.door_not_allowed': '无权通行此门', 'err.not_yet_valid': '尚未生效',
    'err.outside_schedule': '不在通行时段内', 'err.door_fault': '门故障', 'err.person_required': '需要指定人员', 'err.invalid_credential': '凭证无效',
    'err.unknown': '操作失败（错误代码 {code}）', 'err.setup_in_progress': '另一个设置请求正在进行', 'err.http_500': '网关内部错误', 'err.http_502': '网关不可达', 'err.http_503': '网关暂时不可用，请稍后再试', 'err.http_404': '未找到',
    'sep': '：', 'door.lockLabel': '门锁', 'door.contactLabel': '门磁', 'door.alarmLabel': '报警', 'door.fireLabel': '消防', 'door.fireInput': '消防输入有效', 'door.fireNormal': '正常',
    'door.alarm.held_open': '开门超时', 'door.alarm.forced_open': '强行开门', 'door.alarm.fault': '门故障', 'door.alarm.fire.release': '消防释放', 'door.alarm.release': '消防释放',
    'ev.cleared': '已解除', 'ev.granted': '通行', 'ev.uplink.state': '上行链路', 'ev.outbox.evicted': '积压记录被丢弃', 'ev.gateway.ready': '网关就绪', 'ev.gateway.stopping': '网关停止',
    'ev.meter.reading': '表计读数', 'ev.meter.device': '表计状态', 'ev.door.state': '门状态', 'ev.door.alarm': '门报警', 'ev.access.decision': '通行记录', 'ev.vision.camera': '摄像头',
    'ev.vision.decision': '人脸识别', 'ev.audit': '操作记录', 'ev.console.config': '配置',
    'reason.granted': '允许', 'reason.unknown_person': '未登记人员', 'reason.expired': '已过期', 'reason.not_yet_valid': '尚未生效', 'reason.outside_schedule': '不在通行时段',
    'reason.door_not_allowed': '无权通行此门', 'reason.rate_limited': '过于频繁', 'reason.unknown_door': '未知的门', 'reason.disabled': '已停用', 'reason.door_fault': '门故障',
    'reason.person_required': '需要指定人员', 'reason.invalid_credential': '凭证无效', 'reason.command_expired': '命令过期', 'reason.fire_release': '消防释放', 'reason.undefined': '—',
    'reason.no_face': '未检测到人脸', 'reason.not_frontal': '未正对摄像头', 'reason.too_blurred': '画面模糊', 'reason.too_dark': '光线太暗', 'reason.face_too_small': '人脸太小',
    'reason.several_faces': '多张人脸', 'reason.spoof': '疑似照片/屏幕', 'reason.no_match': '未匹配', 'reason.low_score': '相似度不足',
    'audit.console.command': '执行命令', 'audit.console.config.applied': '应用配置', 'audit.console.login': '登录', 'audit.console.logout': '退出', 'audit.console.login.failed': '登录失败',
    'audit.console.login.locked': '登录被锁定', 'audit.console.meters.rawpoll': '报文测试', 'audit.console.password.changed': '修改密码', 'audit.console.service.restart': '重启服务',
    'audit.console.setup': '首次设置', 'audit.console.setup.refused': '设置令牌错误', 'audit.console.user.changed': '修改账号', 'audit.console.user.created': '新增账号', 'audit.console.user.deleted': '删除账号',
    'audit.console.support.bundle': '下载诊断包',
    'cred.face': '人脸', 'cred.remote': '远程', 'cred.exit_button': '出门按钮', 'cred.console': '控制台', 'cred.fire': '消防',
    'doors.when': '时间', 'doors.door': '门', 'doors.person': '人员', 'doors.credential': '方式', 'doors.result': '结果', 'doors.reason': '原因', 'doors.by': '操作人',
    'doors.all': '全部', 'doors.granted': '允许', 'doors.denied': '拒绝', 'doors.more': '更多', 'doors.fireState': '消防状态', 'doors.fireInputState': '消防输入',
    'doors.active': '有效', 'doors.idle': '无', 'doors.released': '消防释放中', 'doors.noEvents': '没有记录', 'doors.last': '最近通行',
    'doors.confirmFireClear': '确认解除消防释放？', 'day.mon': '一', 'day.tue': '二', 'day.wed': '三', 'day.thu': '四', 'day.fri': '五', 'day.sat': '六', 'day.sun': '日',
    'people.from': '开始', 'people.to': '结束', 'people.removeWindow': '删除', 'people.schedule': '通行时段（每周）', 'people.scheduleHelp': '不设时段 = 任何时间可通行', 'people.addWindow': '添加时段',
    'people.unknownGroup': '本网关没有此门组', 'people.enabled': '启用', 'people.gateUpdates': '住户同意用门口通行抓拍更新其人脸档案（取消即删除已学习的模板）', 'people.learned': '已从门口抓拍学习 {n} 个模板', 'people.doorGroups': '门组', 'people.noGroups': '本网关未配置门组', 'people.photosNew': '人脸照片（可多张，与人员一起保存）',
    'people.photosMore': '追加人脸照片', 'people.badWindow': '每个时段至少选一天，并填写开始和结束时间', 'people.preparing': '正在处理 {n} 张照片…', 'people.groupWarning': '已保存，但有门组不存在',
    'people.noFaceAccess': '已保存，但本网关没有人脸识别，照片未录入', 'people.enrolFailed': '已保存，但人脸录入失败', 'people.photosRejected': '{n} 张照片未录入：{reasons}',
    'people.savedFaces': '已保存，人脸模板 {n} 个', 'people.saved': '已保存', 'people.total': '共 {n} 人', 'people.disabled': '已停用', 'people.active': '启用', 'people.state': '状态',
    'reason.not_an_image': '不是图片', 'reason.too_large': '图片太大', 'reason.bad_embedding': '特征数据无效', 'reason.too_many_faces': '人脸太多',
    'nav.account': '我的账号', 'account.who': '当前登录', 'password.repeat': '再次输入新密码', 'password.mismatch': '两次输入的新密码不一致', 'password.changed': '密码已修改',
    'users.confirmRole': '把 {user} 的角色从“{from}”改为“{to}”？该账号需要重新登录。', 'users.roleChanged': '{user} 的角色已改为 {role}', 'users.confirmDelete': '确认删除账号 {user}？',
    'users.ownPassword': '修改自己的密码：见“我的账号”。',
    'config.confirmed': '已确认：网关以新配置运行正常（{at}）', 'rollback.restarts': '服务重启 {n} 次仍未恢复正常', 'rollback.unhealthy': '{s} 秒内未恢复正常：{modules}',
    'rollback.did_not_load': '新配置无法加载', 'rollback.other': '原因见服务日志',
    'camera.live': '实时画面', 'camera.start': '开始', 'camera.stop': '停止', 'camera.rate': '每 {s} 秒一帧', 'camera.unknownFace': '未识别', 'camera.state': '摄像头',
    'camera.fps': '帧率', 'camera.frames': '帧数', 'camera.models': '模型', 'camera.paused': '已暂停', 'camera.frameAt': '画面时间 {at}',
    'camstate.streaming': '正在取流', 'camstate.connecting': '连接中', 'camstate.stalled': '画面中断', 'camstate.frozen': '画面冻结', 'camstate.stopped': '已停止', 'camstate.failed': '故障', 'camstate.idle': '空闲',
    'mod.uplink': '上行链路', 'mod.meters': '表计', 'mod.doors': '门禁', 'mod.console': '控制台', 'mod.vision': '人脸识别', 'mod.status': '状态上报', 'mod.http': '健康检查接口', 'mod.outbox': '本地缓存', 'mod.commands': '命令',
    'support.title': '诊断包', 'support.help': '一个文件：带日期的日志、自检报告、配置（密钥已隐藏）、指标、版本和每条总线的报文。不含人员和人脸数据。发给技术支持即可。', 'support.download': '下载诊断包', 'system.host': '主机名', 'system.config': '配置来源', 'system.data': '数据目录', 'system.filter': '筛选', 'system.restarting': '服务正在重启…',
    'level.trace': '跟踪', 'level.debug': '调试', 'level.info': '信息', 'level.warn': '警告', 'level.error': '错误', 'level.fatal': '致命',
    'role.viewer': '查看', 'role.technician': '技术员', 'role.admin': '管理员', 'refresh': '刷新', 'cancel': '取消', 'save': '保存', 'yes': '是', 'no': '否',
  },
  en: {
    'app.title': 'Gateway technician console', 'lang.switch': '中文', 'nav.dashboard': 'Dashboard', 'nav.meters': 'Meters', 'nav.doors': 'Doors', 'nav.people': 'People',
    'nav.camera': 'Camera', 'nav.config': 'Configuration', 'nav.system': 'System', 'nav.users': 'Accounts', 'logout': 'Log out',
    'setup.title': 'First-run setup', 'setup.intro': 'Create the first admin account. The setup token: scan the QR label printed at install time and it is filled in; or run estate-edge setup-token on the box\'s screen or serial console (estate-edge doctor shows it too); it is also in the service log. One-time; when it has expired, estate-edge setup-token makes a new one.',
    'setup.token': 'Setup token', 'setup.submit': 'Create admin', 'login.title': 'Log in', 'login.user': 'User name', 'login.password': 'Password', 'login.submit': 'Log in',
    'password.new': 'New password (at least 10 characters)', 'password.current': 'Current password', 'password.change': 'Change password',
    'err.bad_credentials': 'Wrong user name or password', 'err.locked': 'Too many wrong passwords: login locked for {min} min', 'err.bad_setup_token': 'Wrong setup token',
    'err.not_logged_in': 'Session expired: log in again', 'err.csrf': 'Security token invalid: reload the page', 'err.forbidden': 'Not allowed for your role', 'err.bad_host': 'Open the console by the box\'s IP address or hostname (other names are refused, see console.hostNames)', 'err.too_large': 'File too large',
    'err.not_an_image': 'Not an image (JPEG or PNG needed)', 'err.conflict': 'Someone else changed the configuration: reload, then redo your change', 'err.invalid_config': 'Configuration invalid: nothing was changed',
    'err.network': 'Cannot reach the gateway', 'err.weak_password': 'Password not accepted: at least 10 characters, not containing the user name', 'err.not_configured': 'Not configured', 'err.restart_pending': 'A change is being applied; the service is restarting',
    'live.on': 'Live', 'live.off': 'Live connection lost, reconnecting…', 'notconf': 'This capability is not configured on this gateway', 'loading': 'Loading…', 'none': 'None',
    'dash.uplink': 'Uplink', 'dash.connected': 'connected', 'dash.disconnected': 'disconnected', 'dash.outbox': 'Outbox records', 'dash.oldest': 'Oldest waiting',
    'dash.meters': 'Meters', 'dash.doors': 'Doors', 'dash.online': 'online', 'dash.offline': 'offline', 'dash.events': 'Last events', 'dash.system': 'Host',
    'dash.cpu': 'CPU load', 'dash.mem': 'Memory', 'dash.disk': 'Disk free', 'dash.clock': 'Clock sync', 'dash.synced': 'synchronised', 'dash.unsynced': 'not synchronised',
    'dash.modules': 'Modules', 'dash.version': 'Version', 'dash.uptime': 'Uptime', 'ok': 'OK', 'fail': 'Fault',
    'cmd.run': 'Run', 'cmd.args': 'Arguments (JSON)', 'cmd.result': 'Result', 'cmd.commands': 'Commands', 'cmd.done': 'Done',
    'meters.title': 'Meters', 'meters.device': 'Device', 'meters.values': 'Values', 'meters.quality': 'Quality', 'meters.counters': 'Counters', 'meters.lastError': 'Last error',
    'doors.title': 'Doors', 'doors.state': 'State', 'doors.unlock': 'Unlock test', 'doors.fire': 'Fire release', 'doors.fireClear': 'Clear fire', 'doors.log': 'Event log',
    'doors.filterDoor': 'Door', 'doors.filterType': 'Type', 'doors.confirmUnlock': 'Unlock {door}?', 'doors.confirmFire': 'Release every door (fire)?',
    'people.title': 'People', 'people.search': 'Search name or id', 'people.add': 'Add', 'people.id': 'Id', 'people.name': 'Name', 'people.kind': 'Kind',
    'people.validFrom': 'Valid from', 'people.validUntil': 'Valid until', 'people.groups': 'Door groups (comma-separated)', 'people.faces': 'Faces', 'people.enrol': 'Upload a face photo',
    'people.delete': 'Delete', 'people.edit': 'Edit', 'people.photo': 'Photo', 'people.capture': 'From camera', 'people.captureHelp': 'Have the person face the door camera, then confirm', 'people.confirmDelete': 'Delete {id}?', 'people.save': 'Save', 'people.resident': 'resident', 'people.staff': 'staff', 'people.visitor': 'visitor',
    'camera.title': 'Camera', 'camera.snapshot': 'Snapshot', 'camera.score': 'score',
    'config.title': 'Configuration', 'config.form': 'Form', 'config.yaml': 'YAML', 'config.validate': 'Validate', 'config.apply': 'Apply', 'config.diff': 'Changes against the running config',
    'config.download': 'Download backup', 'config.upload': 'Upload file', 'config.valid': 'Configuration valid', 'config.applied': 'Configuration written; the service is restarting…', 'config.back': 'Service is back',
    'config.notEditable': 'Not editable', 'config.yamlOnly': 'edit in the YAML view', 'config.lastApply': 'Last apply', 'config.rolledBack': 'rolled back automatically', 'config.pending': 'being applied, waiting for the restarted service to confirm',
    'config.confirmApply': 'Apply these changes and restart the service?', 'config.nochanges': 'No changes', 'config.problem': 'problem', 'config.revision': 'revision', 'config.default': 'default',
    'system.title': 'System', 'system.version': 'Version', 'system.uptime': 'Uptime', 'system.addresses': 'Network addresses', 'system.models': 'Model files',
    'system.logs': 'Logs', 'system.level': 'Level', 'system.restart': 'Restart service', 'system.confirmRestart': 'Restart the service?', 'system.hash': 'Hash', 'system.missing': 'missing',
    'users.title': 'Accounts', 'users.role': 'Role', 'users.add': 'Add account', 'users.lastLogin': 'Last login', 'users.unlock': 'Unlock', 'users.delete': 'Delete', 'users.reset': 'Reset password', 'users.locked': 'locked',
    'door.locked': 'locked', 'door.unlocked': 'unlocked', 'door.open': 'open', 'door.closed': 'closed', 'door.unknown': 'contact unknown', 'door.fire': 'fire-released', 'door.alarm': 'alarm',
    'meters.point': 'Point', 'meters.value': 'Value', 'meters.unit': 'Unit', 'meters.time': 'Time', 'meters.readNow': 'Read now', 'meters.readDone': 'Read ({ms} ms, {at})',
    'meters.countersLine': '{ok}/{req} ok · {timeout} timeout · {crc} CRC · {bad} bad · {ms} ms avg', 'meters.busLine': '{online}/{devices} online · {tx} transactions',
    'meters.address': 'Address', 'meters.detail': 'Detail', 'meters.scan': 'Scan', 'meters.scanTitle': 'Bus scan', 'meters.from': 'From', 'meters.to': 'To',
    'meters.badRange': '"To" must not be below "From" (1–247)', 'meters.scanning': 'Scanning…', 'meters.scanProgress': '{done}/{total} probed, probing {from}–{to}, {found} found',
    'meters.scanDone': 'Scan done: {done} addresses probed, {found} found, {s} s', 'meters.scanCancelled': 'Cancelled: {done}/{total} addresses probed, {found} found', 'meters.scanReadAddress': 'Read-address of the protocol (no address range)',
    'meters.rawHex': 'Custom frame (hex)', 'meters.send': 'Send', 'meters.pollTester': 'Poll tester', 'meters.bus': 'Bus', 'meters.dir': 'Dir', 'meters.frame': 'Frame (hex)',
    'meters.tx': 'sent', 'meters.rx': 'received', 'meters.pollError': 'Error', 'meters.noFrames': 'No frames', 'meters.unknown': 'unknown',
    'meters.err.timeout': 'timeout', 'meters.err.crc': 'CRC error', 'meters.err.exception': 'exception reply', 'meters.err.wrong_unit': 'wrong unit', 'meters.err.bad_reply': 'bad reply', 'meters.err.port': 'port error',
    'q.good': 'good', 'q.invalid': 'invalid', 'q.unsupported': 'unsupported',
    'err.already_set_up': 'Already set up: log in', 'err.bad_args': 'Bad arguments', 'err.bad_json': 'Malformed request', 'err.bad_level': 'Invalid log level', 'err.bad_request': 'Invalid request',
    'err.bad_user': 'User name: 2–64 letters, digits, . _ @ -', 'err.busy': 'Gateway busy: try again in a moment', 'err.exists': 'That account exists already', 'err.internal': 'Internal error (see the service log)',
    'err.last_admin': 'The last admin cannot be removed or demoted', 'err.no_change': 'The new configuration is the same as the running one', 'err.no_frame': 'No camera frame yet', 'err.not_editable': 'This gateway\'s configuration cannot be edited here',
    'err.not_found': 'Not found', 'err.not_text': 'The file is not UTF-8 text', 'err.poll_failed': 'Poll failed', 'err.unknown_bus': 'No such bus', 'err.unknown_person': 'No such person',
    'err.unknown_user': 'No such account', 'err.unsupported_media_type': 'File type not accepted', 'err.bad_duration': 'Unlock duration above the limit', 'err.bad_people': 'Invalid people data: nothing stored',
    'err.bad_photo': 'Invalid photo data', 'err.bad_schedule': 'Malformed schedule', 'err.bad_validity': 'Invalid validity', 'err.bus_busy': 'Bus busy: try again', 'err.expired': 'Command expired: not executed',
    'err.fire_input_active': 'The fire input is still active', 'err.fire_release_active': 'Fire release active: cannot lock', 'err.meter_error': 'Meter read failed', 'err.meter_timeout': 'Meter did not answer (timeout)',
    'err.meter_crc': 'CRC error', 'err.meter_exception': 'Meter returned an exception', 'err.meter_wrong_unit': 'Reply from the wrong unit', 'err.meter_bad_reply': 'Bad reply from the meter', 'err.meter_port': 'Serial port error',
    'err.timeout': 'Timed out', 'err.unknown_device': 'No such device', 'err.unknown_door': 'No such door', 'err.in_progress': 'Command already running', 'err.unknown_command': 'Unknown command',
    'err.too_many_streams': 'Too many live views open', 'err.rate_limited': 'Too many attempts', 'err.disabled': 'Person disabled', 'err.door_not_allowed': 'Not allowed at this door', 'err.not_yet_valid': 'Not yet valid',
    'err.outside_schedule': 'Outside the schedule', 'err.door_fault': 'Door fault', 'err.person_required': 'A person is required', 'err.invalid_credential': 'Invalid credential',
    'err.unknown': 'Failed (error code {code})', 'err.setup_in_progress': 'Another setup request is running', 'err.http_500': 'Gateway internal error', 'err.http_502': 'Gateway unreachable', 'err.http_503': 'Gateway temporarily unavailable', 'err.http_404': 'Not found',
    'sep': ': ', 'door.lockLabel': 'Lock', 'door.contactLabel': 'Contact', 'door.alarmLabel': 'Alarm', 'door.fireLabel': 'Fire', 'door.fireInput': 'fire input active', 'door.fireNormal': 'normal',
    'door.alarm.held_open': 'held open', 'door.alarm.forced_open': 'forced open', 'door.alarm.fault': 'door fault', 'door.alarm.fire.release': 'fire release', 'door.alarm.release': 'fire release',
    'ev.cleared': 'cleared', 'ev.granted': 'granted', 'ev.uplink.state': 'Uplink', 'ev.outbox.evicted': 'Outbox records evicted', 'ev.gateway.ready': 'Gateway ready', 'ev.gateway.stopping': 'Gateway stopping',
    'ev.meter.reading': 'Meter reading', 'ev.meter.device': 'Meter state', 'ev.door.state': 'Door state', 'ev.door.alarm': 'Door alarm', 'ev.access.decision': 'Access', 'ev.vision.camera': 'Camera',
    'ev.vision.decision': 'Face recognition', 'ev.audit': 'Audit', 'ev.console.config': 'Configuration',
    'reason.granted': 'granted', 'reason.unknown_person': 'unknown person', 'reason.expired': 'expired', 'reason.not_yet_valid': 'not yet valid', 'reason.outside_schedule': 'outside schedule',
    'reason.door_not_allowed': 'door not allowed', 'reason.rate_limited': 'rate limited', 'reason.unknown_door': 'unknown door', 'reason.disabled': 'disabled', 'reason.door_fault': 'door fault',
    'reason.person_required': 'person required', 'reason.invalid_credential': 'invalid credential', 'reason.command_expired': 'command expired', 'reason.fire_release': 'fire release', 'reason.undefined': '—',
    'reason.no_face': 'no face', 'reason.not_frontal': 'not frontal', 'reason.too_blurred': 'too blurred', 'reason.too_dark': 'too dark', 'reason.face_too_small': 'face too small',
    'reason.several_faces': 'several faces', 'reason.spoof': 'spoof suspected', 'reason.no_match': 'no match', 'reason.low_score': 'score too low',
    'audit.console.command': 'command', 'audit.console.config.applied': 'config applied', 'audit.console.login': 'login', 'audit.console.logout': 'logout', 'audit.console.login.failed': 'login failed',
    'audit.console.login.locked': 'login locked', 'audit.console.meters.rawpoll': 'poll test', 'audit.console.password.changed': 'password changed', 'audit.console.service.restart': 'service restart',
    'audit.console.setup': 'first setup', 'audit.console.setup.refused': 'wrong setup token', 'audit.console.user.changed': 'account changed', 'audit.console.user.created': 'account created', 'audit.console.user.deleted': 'account deleted',
    'audit.console.support.bundle': 'support bundle',
    'cred.face': 'face', 'cred.remote': 'remote', 'cred.exit_button': 'exit button', 'cred.console': 'console', 'cred.fire': 'fire',
    'doors.when': 'Time', 'doors.door': 'Door', 'doors.person': 'Person', 'doors.credential': 'Credential', 'doors.result': 'Result', 'doors.reason': 'Reason', 'doors.by': 'By',
    'doors.all': 'all', 'doors.granted': 'granted', 'doors.denied': 'denied', 'doors.more': 'More', 'doors.fireState': 'Fire state', 'doors.fireInputState': 'Fire input',
    'doors.active': 'active', 'doors.idle': 'idle', 'doors.released': 'fire release active', 'doors.noEvents': 'No events', 'doors.last': 'Last access',
    'doors.confirmFireClear': 'Clear the fire release?', 'day.mon': 'Mon', 'day.tue': 'Tue', 'day.wed': 'Wed', 'day.thu': 'Thu', 'day.fri': 'Fri', 'day.sat': 'Sat', 'day.sun': 'Sun',
    'people.from': 'From', 'people.to': 'To', 'people.removeWindow': 'Remove', 'people.schedule': 'Weekly schedule', 'people.scheduleHelp': 'No window = any time', 'people.addWindow': 'Add a window',
    'people.unknownGroup': 'not a group on this gateway', 'people.enabled': 'Enabled', 'people.gateUpdates': 'Resident consents to updating their face record from gate captures (unticking deletes what was learned)', 'people.learned': '{n} template(s) learned from gate captures', 'people.doorGroups': 'Door groups', 'people.noGroups': 'No door groups configured', 'people.photosNew': 'Face photos (several allowed, saved with the person)',
    'people.photosMore': 'More face photos', 'people.badWindow': 'Each window needs a day, a start and an end', 'people.preparing': 'Preparing {n} photo(s)…', 'people.groupWarning': 'Saved, but a door group does not exist',
    'people.noFaceAccess': 'Saved, but this gateway has no face recognition: photos not enrolled', 'people.enrolFailed': 'Saved, but face enrolment failed', 'people.photosRejected': '{n} photo(s) not enrolled: {reasons}',
    'people.savedFaces': 'Saved, {n} face template(s)', 'people.saved': 'Saved', 'people.total': '{n} people', 'people.disabled': 'disabled', 'people.active': 'enabled', 'people.state': 'State',
    'reason.not_an_image': 'not an image', 'reason.too_large': 'image too large', 'reason.bad_embedding': 'bad embedding', 'reason.too_many_faces': 'too many faces',
    'nav.account': 'My account', 'account.who': 'Logged in as', 'password.repeat': 'New password again', 'password.mismatch': 'The two new passwords differ', 'password.changed': 'Password changed',
    'users.confirmRole': 'Change the role of {user} from {from} to {to}? The account has to log in again.', 'users.roleChanged': '{user} is now {role}', 'users.confirmDelete': 'Delete the account {user}?',
    'users.ownPassword': 'Your own password: see My account.',
    'config.confirmed': 'Confirmed: the gateway runs healthy with the new configuration ({at})', 'rollback.restarts': 'the service restarted {n} times without becoming healthy', 'rollback.unhealthy': 'not healthy within {s} s: {modules}',
    'rollback.did_not_load': 'the new configuration did not load', 'rollback.other': 'see the service log',
    'camera.live': 'Live view', 'camera.start': 'Start', 'camera.stop': 'Stop', 'camera.rate': 'one frame every {s} s', 'camera.unknownFace': 'not recognised', 'camera.state': 'Camera',
    'camera.fps': 'Frame rate', 'camera.frames': 'Frames', 'camera.models': 'Models', 'camera.paused': 'paused', 'camera.frameAt': 'frame at {at}',
    'camstate.streaming': 'streaming', 'camstate.connecting': 'connecting', 'camstate.stalled': 'stalled', 'camstate.frozen': 'frozen', 'camstate.stopped': 'stopped', 'camstate.failed': 'failed', 'camstate.idle': 'idle',
    'mod.uplink': 'uplink', 'mod.meters': 'meters', 'mod.doors': 'doors', 'mod.console': 'console', 'mod.vision': 'face recognition', 'mod.status': 'status reports', 'mod.http': 'health endpoint', 'mod.outbox': 'outbox', 'mod.commands': 'commands',
    'support.title': 'Support bundle', 'support.help': 'One file: logs with dates, the doctor report, the configuration (secrets masked), metrics, versions and the frames of each bus. No people or face data. Send it to support.', 'support.download': 'Download support bundle', 'system.host': 'Host', 'system.config': 'Config', 'system.data': 'Data', 'system.filter': 'filter', 'system.restarting': 'Service restarting…',
    'level.trace': 'trace', 'level.debug': 'debug', 'level.info': 'info', 'level.warn': 'warn', 'level.error': 'error', 'level.fatal': 'fatal',
    'role.viewer': 'viewer', 'role.technician': 'technician', 'role.admin': 'admin', 'refresh': 'Refresh', 'cancel': 'Cancel', 'save': 'Save', 'yes': 'yes', 'no': 'no',
  },
};

// The language chosen on this browser (Chinese unless English was chosen). index.html is
// marked zh-CN; only a change is written, at start nothing is.
let lang = localStorage.getItem('ee.lang') === 'en' ? 'en' : 'zh';
if (lang === 'en') document.documentElement.lang = 'en';

export function t(key, params = {}) {
  const s = T[lang][key] ?? T.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(params[k] ?? ''));
}
export const getLang = () => lang;
/** The translation of key, or (an id with no translation) the fallback as it is, marked not to be translated. */
export function tOr(key, fallback) {
  const s = T[lang][key] ?? T.en[key];
  if (s !== undefined) return s;
  const el = document.createElement('span');
  el.setAttribute('translate', 'no');
  el.textContent = fallback;
  return el;
}
export function setLang(l) {
  lang = l === 'en' ? 'en' : 'zh';
  localStorage.setItem('ee.lang', lang);
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
}
// Meter point names: the profiles' keys (drivers/profiles/*.yaml) are English snake_case;
// in Chinese each is shown by its words, with a phase suffix (_l1 → A 相), and the point's
// kind when the key has words this table does not know. The key is shown beside it.
const POINT_WORDS = {
  zh: { total: '总', import: '正向', export: '反向', energy: '电能', active: '有功', reactive: '无功', apparent: '视在', power: '功率', factor: '因数', voltage: '电压', current: '电流', frequency: '频率',
    volume: '累计流量', settlement: '结算日', flow: '流量', rate: '速率', temperature: '温度', heat: '热量', gas: '燃气', water: '水', status: '状态', demand: '需量', max: '最大', forward: '正向', reverse: '反向', supply: '供水', return: '回水', date: '日期', time: '时间', battery: '电池', valve: '阀门' },
  kinds: { energy: '电能', power: '有功功率', reactive_power: '无功功率', apparent_power: '视在功率', voltage: '电压', current: '电流', power_factor: '功率因数', frequency: '频率', water_volume: '水量', heat_energy: '热量', gas_volume: '气量', flow_rate: '流量', temperature: '温度', status: '状态', other: '其他' },
};
const PHASE = { l1: 'A 相', l2: 'B 相', l3: 'C 相', n: '零线' };
export function pointName(key, kind) {
  if (lang !== 'zh') return key.replace(/_/g, ' ');
  const parts = String(key).split('_');
  const phase = PHASE[parts[parts.length - 1]];
  if (phase) parts.pop();
  const words = parts.map((w) => POINT_WORDS.zh[w]);
  const base = words.every((w) => w !== undefined) ? words.join('') : POINT_WORDS.kinds[kind] ?? key;
  return phase ? `${phase}${base}` : base;
}
export const KEYS = { zh: Object.keys(T.zh), en: Object.keys(T.en) };
