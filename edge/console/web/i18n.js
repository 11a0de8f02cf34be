// Every string the pages show, in one table: Chinese (default) and English.
const T = {
  zh: {
    'app.title': '网关维护控制台', 'lang.switch': 'English', 'nav.dashboard': '总览', 'nav.meters': '表计', 'nav.doors': '门禁', 'nav.people': '人员',
    'nav.camera': '摄像头', 'nav.config': '配置', 'nav.system': '系统', 'nav.users': '账号', 'logout': '退出',
    'setup.title': '首次设置', 'setup.intro': '创建第一个管理员账号。设置令牌在服务日志中（journalctl -u estate-edge | grep "setup token"）。',
    'setup.token': '设置令牌', 'setup.submit': '创建管理员', 'login.title': '登录', 'login.user': '用户名', 'login.password': '密码', 'login.submit': '登录',
    'password.new': '新密码（至少 10 个字符）', 'password.current': '当前密码', 'password.change': '修改密码',
    'err.bad_credentials': '用户名或密码错误', 'err.locked': '密码错误次数过多，登录已锁定 {min} 分钟', 'err.bad_setup_token': '设置令牌错误',
    'err.not_logged_in': '会话已过期，请重新登录', 'err.csrf': '安全令牌无效，请刷新页面', 'err.forbidden': '权限不足', 'err.too_large': '文件太大',
    'err.not_an_image': '不是图片文件（需要 JPEG 或 PNG）', 'err.conflict': '配置已被他人修改，请重新加载后再改', 'err.invalid_config': '配置无效，未做任何修改',
    'err.network': '无法连接网关', 'err.weak_password': '密码不符合要求', 'err.not_configured': '未配置', 'err.restart_pending': '配置正在应用，服务重启中',
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
    'config.confirmApply': '应用这些修改并重启服务？', 'config.nochanges': '没有修改', 'config.default': '默认',
    'system.title': '系统', 'system.version': '版本', 'system.uptime': '运行时间', 'system.addresses': '网络地址', 'system.models': '模型文件',
    'system.logs': '日志', 'system.level': '级别', 'system.restart': '重启服务', 'system.confirmRestart': '确认重启服务？', 'system.hash': '校验', 'system.missing': '缺失',
    'users.title': '账号', 'users.role': '角色', 'users.add': '新增账号', 'users.lastLogin': '最近登录', 'users.unlock': '解锁', 'users.delete': '删除', 'users.reset': '重置密码', 'users.locked': '已锁定',
    'door.locked': '已锁', 'door.unlocked': '已开锁', 'door.open': '门开', 'door.closed': '门关', 'door.unknown': '门状态未知', 'door.fire': '消防释放中', 'door.alarm': '报警',
    'role.viewer': '查看', 'role.technician': '技术员', 'role.admin': '管理员', 'refresh': '刷新', 'cancel': '取消', 'save': '保存', 'yes': '是', 'no': '否',
  },
  en: {
    'app.title': 'Gateway technician console', 'lang.switch': '中文', 'nav.dashboard': 'Dashboard', 'nav.meters': 'Meters', 'nav.doors': 'Doors', 'nav.people': 'People',
    'nav.camera': 'Camera', 'nav.config': 'Configuration', 'nav.system': 'System', 'nav.users': 'Accounts', 'logout': 'Log out',
    'setup.title': 'First-run setup', 'setup.intro': 'Create the first admin account. The setup token is in the service log (journalctl -u estate-edge | grep "setup token").',
    'setup.token': 'Setup token', 'setup.submit': 'Create admin', 'login.title': 'Log in', 'login.user': 'User name', 'login.password': 'Password', 'login.submit': 'Log in',
    'password.new': 'New password (at least 10 characters)', 'password.current': 'Current password', 'password.change': 'Change password',
    'err.bad_credentials': 'Wrong user name or password', 'err.locked': 'Too many wrong passwords: login locked for {min} min', 'err.bad_setup_token': 'Wrong setup token',
    'err.not_logged_in': 'Session expired: log in again', 'err.csrf': 'Security token invalid: reload the page', 'err.forbidden': 'Not allowed for your role', 'err.too_large': 'File too large',
    'err.not_an_image': 'Not an image (JPEG or PNG needed)', 'err.conflict': 'Someone else changed the configuration: reload, then redo your change', 'err.invalid_config': 'Configuration invalid: nothing was changed',
    'err.network': 'Cannot reach the gateway', 'err.weak_password': 'Password not accepted', 'err.not_configured': 'Not configured', 'err.restart_pending': 'A change is being applied; the service is restarting',
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
    'config.confirmApply': 'Apply these changes and restart the service?', 'config.nochanges': 'No changes', 'config.default': 'default',
    'system.title': 'System', 'system.version': 'Version', 'system.uptime': 'Uptime', 'system.addresses': 'Network addresses', 'system.models': 'Model files',
    'system.logs': 'Logs', 'system.level': 'Level', 'system.restart': 'Restart service', 'system.confirmRestart': 'Restart the service?', 'system.hash': 'Hash', 'system.missing': 'missing',
    'users.title': 'Accounts', 'users.role': 'Role', 'users.add': 'Add account', 'users.lastLogin': 'Last login', 'users.unlock': 'Unlock', 'users.delete': 'Delete', 'users.reset': 'Reset password', 'users.locked': 'locked',
    'door.locked': 'locked', 'door.unlocked': 'unlocked', 'door.open': 'open', 'door.closed': 'closed', 'door.unknown': 'contact unknown', 'door.fire': 'fire-released', 'door.alarm': 'alarm',
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
export function setLang(l) {
  lang = l === 'en' ? 'en' : 'zh';
  localStorage.setItem('ee.lang', lang);
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
}
export const KEYS = { zh: Object.keys(T.zh), en: Object.keys(T.en) };
