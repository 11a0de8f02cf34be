// The platform side of sealed secrets (the fleet tool, scripts): seal a value for one box
// with the `boxPublicKey` its gateway.info gives; put `{ sealed: <result> }` where the
// config wants a secret. The box opens it with its key (edge/config/sealed.ts).
export { sealFor } from '../config/sealed.js';
