// koa2 is the npm alias of koa@2 used to run the Koa adapter on both majors; for what the tests
// use (new Koa(), app.use, app.callback), its API is the same as Koa 3's, whose types are installed.
declare module 'koa2' {
  import Koa from 'koa'
  export default Koa
}
